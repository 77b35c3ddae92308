"""httpx and its transport, httpcore, loaded without the parts FELES never uses: httpx's command line and
httpcore's support for trio.

httpx imports its command-line client (httpx/_main.py, with click, pygments and much of rich) wherever those are
installed, as they are with FELES; httpcore, which httpx imports at its first client, imports trio wherever trio is
installed (selenium brings it with the test extra, and research environments often have it), for async use under
trio. FELES's clients are synchronous and it never runs httpx's command line, yet the two cost a worker ~200 ms of
its start-up (httpx imported and a client made: 313 to 368 ms, 130 ms without them), on the cores the orchestrator
and the other workers were starting on; and every worker forked from another imported httpcore again.
"""

from __future__ import annotations

import sys
from types import ModuleType

#: Modules the import of httpx and httpcore pulls in only for uses FELES never has.
UNUSED = ("httpx._main", "trio")


def load_httpx() -> ModuleType:
    """httpx, with httpcore imported now too; neither imports the UNUSED modules if nothing has imported them yet.

    They stay importable afterwards (httpx then keeps a `main` that explains how to install its command line).
    Called at a process's start, before other threads could import them meanwhile.
    """
    hidden = [name for name in UNUSED if name not in sys.modules]
    # None in sys.modules makes an import raise ImportError, which both packages take as "not installed".
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import httpcore  # noqa: F401
        import httpx
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return httpx
