"""Set-up as a newcomer and CI see it: CI runs the README's test command, and the tree is lint-clean
under the project's pinned ruff configuration (pyproject.toml [tool.ruff])."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up: two commands", 1)[1]
    install, tests = _bash_blocks(setup)[:2]
    assert "semguard run" in install and tests.endswith("python -m pytest -q")
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert ci[-1] == tests
    # both commands take torch's CPU wheel from an *extra* index: a machine that cannot reach it
    # falls back to its own registry instead of failing
    for cmd in (install, tests):
        assert "pip install torch==2.13.0 --extra-index-url https://download.pytorch.org/whl/cpu" in cmd


def test_tree_is_lint_clean():
    pytest.importorskip("ruff")  # the [test] extra installs it; a bare checkout skips
    cmd = [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
           "src", "tests", "bench", "scripts"]  # this venv's pinned ruff, not one on PATH
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
