"""What each process of `feles run` imports: the parent waits without torch; a bad plug-in still ends it clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import write_spec

pytestmark = pytest.mark.integration

#: Runs the `feles` command in this process and reports, at exit, which heavy modules it imported.
REPORT_IMPORTS = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('heavy imports:', sorted(m for m in ('torch', 'sklearn', 'pandas', 'fastapi')"
    " if m in sys.modules), file=sys.stderr))\n"
    "from feles.cli import app\n"
    "app(sys.argv[1:])\n"
)


def _feles_reporting_imports(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", REPORT_IMPORTS, *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_the_parent_of_feles_run_never_imports_torch(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 1}})
    done = _feles_reporting_imports("run", str(spec), "--workers", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stderr  # the run really went to its end
    assert "heavy imports: []" in done.stderr


def test_an_unknown_plugin_ends_feles_run_with_its_field_path(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"algorithms": {"fit": {"selection": "no_such_selection"}}})
    done = _feles_reporting_imports("run", str(spec), "--workers", "1", cwd=tmp_path)
    assert done.returncode == 1
    assert "algorithms.fit.selection" in done.stderr and "no_such_selection" in done.stderr
    assert "Traceback" not in done.stderr
