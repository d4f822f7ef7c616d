from smmc_bench.cli import main

raise SystemExit(main())
