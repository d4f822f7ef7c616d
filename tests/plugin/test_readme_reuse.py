"""The README's reuse snippet (an emulated meter as a pytest fixture of another project) runs as written."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_reuse_snippet_runs_in_a_foreign_project(tmp_path):
    readme = (REPO / "README.md").read_text()
    marker = readme.index("tests/plugin/test_readme_reuse.py runs this snippet")
    snippet = re.search(r"```python\n(.*?)```", readme[marker:], re.S).group(1)
    (tmp_path / "test_snippet.py").write_text(snippet)
    environment = {k: v for k, v in os.environ.items() if k != "SMMC_BENCH"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_snippet.py"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=environment)
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout + result.stderr
