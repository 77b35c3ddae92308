"""Run the operator: `feles operator` (or `kopf run -m feles_operator`)."""

from __future__ import annotations

from collections.abc import Sequence

import kopf


def run(
    namespaces: Sequence[str] = (),
    all_namespaces: bool = False,
    standalone: bool = True,
    peering: str | None = None,
    liveness: str | None = None,
    verbose: bool = False,
    debug: bool = False,
    quiet: bool = False,
) -> None:
    """Serve FelesSimulations in `namespaces` (or all of them) until SIGINT/SIGTERM."""
    if not namespaces and not all_namespaces:
        raise ValueError("give namespaces to watch, or all_namespaces")
    kopf.configure(debug=debug, verbose=verbose, quiet=quiet)
    import feles_operator  # noqa: F401  (its __init__ registers every kind's handlers)

    kopf.run(
        clusterwide=all_namespaces,
        namespaces=list(namespaces),
        standalone=standalone if peering is None else False,
        peering_name=peering,
        liveness_endpoint=liveness,
    )
