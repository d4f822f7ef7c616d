"""`bench validate`: each conformance test against the conforming meter and every mutant."""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich import box
from rich.markup import escape
from rich.table import Table

from bench.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, REPO_ROOT, VERDICT_STYLE, checked_bench, console, error_console
from bench.record import RunRecord, Verdict, new_run_id
from bench.station import bench_link_kinds, known_mutants


VALIDATION_RUN_S = 1800  # one suite run against one mutant, on the emulated bench
def _run_against(args: argparse.Namespace, mutant: str | None, run_dir: Path) -> RunRecord | str:
    command = [sys.executable, "-m", "pytest", args.suite, f"--rootdir={REPO_ROOT}", "-q",
               "-p", "no:cacheprovider", "--bench", args.bench, "--run-dir", str(run_dir)]
    if args.k:
        command += ["-k", args.k]
    if mutant:
        command += ["--mutant", mutant]
    try:
        result = subprocess.run(command, capture_output=True, text=True, cwd=os.getcwd(), timeout=VALIDATION_RUN_S)
    except subprocess.TimeoutExpired:
        return f"no verdict within {VALIDATION_RUN_S} s"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "pytest.log").write_text(result.stdout + result.stderr)
    record_path = run_dir / "record.json"
    tail = " | ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
    # 0: all passed, 1: some failed; anything else means the suite did not run to its end.
    if result.returncode not in (0, 1) or not record_path.exists():
        return f"run incomplete (pytest exit {result.returncode}): {tail}"
    return RunRecord.read(record_path)


def command_validate(args: argparse.Namespace) -> int:
    config = checked_bench(args.bench)
    if not all(m.emulated for m in config.meter):
        error_console.print("[red]bench validate needs a bench whose meters are all emulated[/]")
        return EXIT_USAGE
    kinds = bench_link_kinds(config)
    # A link mutant lives on some link kinds: on a bench without them it is the conforming meter.
    mutants = {name: info for name, info in known_mutants().items()
               if (not info.link_kinds or "*" in info.link_kinds or kinds & set(info.link_kinds))
               and (not args.mutants or any(fnmatch.fnmatchcase(name, pattern) for pattern in args.mutants))}
    names = [None, *sorted(mutants)]
    out = Path(args.reports) / f"validate-{new_run_id()}"
    console.print(f"[bold]method validation[/]: conforming meter + {len(mutants)} mutants -> {out}")
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(_run_against, args, name, out / (name or "conforming")) for name in names}
        results = {name: future.result() for name, future in futures.items()}

    broken = {name: r for name, r in results.items() if isinstance(r, str)}
    for name, why in broken.items():
        error_console.print(f"[red]{name or 'conforming'}: {escape(why)}[/]")
    if broken:
        return EXIT_FAILED
    conforming: RunRecord = results[None]  # type: ignore[assignment]
    # A test the conforming meter skips (its instrument or feature is not on this bench) is not
    # applicable here: it is listed, not validated. CI checks the default bench skips nothing.
    not_applicable = {t.id: t.diagnosis for t in conforming.tests if t.verdict is Verdict.SKIP}
    tests = [t.id for t in conforming.tests if t.id not in not_applicable]
    verdicts = {name: {t.id: t.verdict for t in r.tests} for name, r in results.items()}  # type: ignore[union-attr]

    mutant_names = names[1:]
    table = Table(title="Method validation: tests (rows) x mutants (columns)", box=box.SIMPLE_HEAD,
                  caption="X = killed (FAIL or ERROR), . = survived, s = skipped, ? = not judged")
    table.add_column("Test", no_wrap=True)
    table.add_column("Conf.", no_wrap=True)
    for index, _ in enumerate(mutant_names, 1):
        table.add_column(f"{index}", justify="center", no_wrap=True)
    problems: list[str] = []
    for number, test_id in enumerate(tests, 1):
        own = verdicts[None][test_id]
        row = [f"T{number}", f"[{VERDICT_STYLE[own]}]{own.value}[/]"]
        if own is not Verdict.PASS:
            problems.append(f"{test_id}: {own.value} against the conforming meter")
        kills = 0
        for name in mutant_names:
            verdict = verdicts[name].get(test_id)
            if verdict is None:  # the mutant's run never judged this test: no evidence either way
                problems.append(f"{test_id}: no verdict in the run against {name}")
                row.append("[red]?[/]")
                continue
            killed = verdict in (Verdict.FAIL, Verdict.ERROR)
            kills += killed
            row.append("[bold green]X[/]" if killed else ("[yellow]s[/]" if verdict is Verdict.SKIP else "[dim].[/]"))
        if kills == 0:
            problems.append(f"{test_id}: kills no mutant (a check that cannot fail)")
        table.add_row(*row)
    console.print(table)
    for number, test_id in enumerate(tests, 1):
        console.print(f"  T{number} = {escape(test_id.split('::')[-1])}", no_wrap=True, overflow="ellipsis")
    for index, name in enumerate(mutant_names, 1):
        console.print(f"  M{index} = [cyan]{name}[/]: {escape(mutants[name].description)}", no_wrap=True,
                      overflow="ellipsis")
    if not_applicable:
        reasons = sorted(set(not_applicable.values()))
        console.print(f"[yellow]{len(not_applicable)} tests not applicable on this bench (skipped by the conforming "
                      f"meter), not validated here:[/] {escape('; '.join(reasons))}")
    unkilled = [name for name in mutant_names if not any(v in (Verdict.FAIL, Verdict.ERROR) for v in verdicts[name].values())]
    for name in unkilled:
        console.print(f"[yellow]mutant {name} is killed by no test[/] (a gap in the suite, not a validation failure)")
    summary = {
        "conforming": {t: v.value for t, v in verdicts[None].items()},
        "not_applicable": not_applicable,
        "mutants": {name: {t: v.value for t, v in verdicts[name].items()} for name in mutant_names},
        "problems": problems,
    }
    (out / "validation.json").write_text(json.dumps(summary, indent=2))
    if problems:
        for problem in problems:
            console.print(f"[bold red]{escape(problem)}[/]")
        return EXIT_FAILED
    console.print(f"[bold green]validated[/]: {len(tests)} tests pass on the conforming meter and each kills a mutant")
    return EXIT_OK


