"""What the orchestrator and workers do at start: import only what they need (no scikit-learn or pandas, no
httpx command line, trio or rich), and set up TLS only for an https orchestrator."""

from __future__ import annotations

import ssl
import subprocess
import sys

import pytest


def fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    """`code` run by a new interpreter (nothing imported yet); it must succeed."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize("module", ["feles.orchestrator.server", "feles.worker.client", "feles.data"])
def test_a_process_module_imports_neither_sklearn_nor_pandas(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in ('sklearn', 'pandas') if m in sys.modules))"
    done = fresh_python(code)
    assert done.stdout.strip() == "[]"


def test_the_wire_models_import_no_torch() -> None:
    code = "import sys, feles.local, feles.protocol; print('torch' in sys.modules)"
    done = fresh_python(code)
    assert done.stdout.strip() == "False"


def test_a_worker_verifies_an_https_orchestrator_and_sets_up_no_tls_for_plain_http() -> None:
    from feles.worker.client import WorkerOptions, _client

    # httpx keeps the TLS context on its connection pool (private attributes: no public accessor).
    secure = _client(WorkerOptions(orchestrator="https://feles.example:8443"))
    assert secure._transport._pool._ssl_context.verify_mode is ssl.CERT_REQUIRED  # type: ignore[attr-defined]
    plain = _client(WorkerOptions(orchestrator="http://127.0.0.1:8080/"))
    assert plain._transport._pool._ssl_context.verify_mode is ssl.CERT_NONE  # type: ignore[attr-defined]
    assert str(plain.base_url) == "http://127.0.0.1:8080"


def test_a_worker_imports_neither_httpx_command_line_nor_trio_and_both_stay_importable() -> None:
    pytest.importorskip("trio")  # installed with selenium; httpcore imports it wherever it is installed
    pytest.importorskip("httpx._main")  # httpx's command line: where click, rich and pygments are installed
    code = (
        "import sys; from feles.worker.client import WorkerOptions, _client; "
        "_client(WorkerOptions(orchestrator='http://127.0.0.1:8080')); "
        "print(*(name in sys.modules for name in ('httpcore', 'trio', 'httpx._main', 'rich'))); "
        "import trio, httpx._main; print(trio.__name__, httpx._main.__name__)"
    )
    done = fresh_python(code)
    assert done.stdout.split() == ["True", "False", "False", "False", "trio", "httpx._main"]


def test_feles_run_imports_httpx_only_once_its_processes_are_started() -> None:
    code = "import sys, feles.local; print('httpx' in sys.modules)"
    done = fresh_python(code)
    assert done.stdout.strip() == "False"


def test_the_feles_command_imports_rich_only_to_print() -> None:
    # The orchestrator and the workers run through feles.cli and print through logging: rich would cost each ~70 ms.
    code = (
        "import sys, feles.cli; print('rich' in sys.modules); "
        "feles.cli._error('failed:', 'a [red]detail[/red]'); print('rich' in sys.modules)"
    )
    done = fresh_python(code)
    assert done.stdout.split() == ["False", "True"]
    assert "failed: a [red]detail[/red]" in done.stderr  # printed verbatim, markup and all
