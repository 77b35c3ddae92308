"""httpcore, the transport under httpx, imported once and without its support for trio.

httpcore imports trio whenever trio is installed, for async clients running under trio. FELES's clients are
synchronous and never run under trio, yet where trio is installed (selenium brings it into the test environment,
and many research environments have it) that import cost every worker and every `feles run` 0.1 to 0.3 s of CPU
at start-up, while the orchestrator and the other workers were starting on the same cores. httpx imports
httpcore only when its first client is made, so a worker forked from another imported it once per process.
"""

from __future__ import annotations

import sys


def import_httpcore() -> None:
    """Import httpcore now, hiding trio from it; trio itself stays importable by anything else afterwards."""
    if "httpcore" in sys.modules or "trio" in sys.modules:
        return  # imported already, or trio is loaded anyway: nothing left to save
    # None in sys.modules makes `import trio` raise ImportError, which httpcore takes as "trio is not installed".
    sys.modules["trio"] = None  # type: ignore[assignment]
    try:
        import httpcore  # noqa: F401
    finally:
        if "trio" in sys.modules and sys.modules["trio"] is None:
            del sys.modules["trio"]
