"""The orchestrator and workers import only what they need: no scikit-learn or pandas at start."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["feles.orchestrator.server", "feles.worker.client", "feles.data"])
def test_a_process_module_imports_neither_sklearn_nor_pandas(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in ('sklearn', 'pandas') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_wire_models_import_no_torch() -> None:
    code = "import sys, feles.local, feles.protocol; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
