"""smmc-bench: the SMMC smart meter homologation bench (bench/ of the repository, installed as
`smmc_bench`; drivers/, fixtures/ and tests/conformance/ are its subpackages).

PYTEST_DONT_REWRITE: the package holds no assertion for pytest to rewrite, and a parallel run
imports it before pytest starts (smmc_bench.plugin.forkserver); this line keeps pytest from warning.
"""
