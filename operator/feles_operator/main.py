"""Run the operator: `feles operator` (or `kopf run -m feles_operator`)."""

from __future__ import annotations

from collections.abc import Sequence

import kopf

from feles_operator.settings import OperatorSettings


def run(
    *,
    settings: OperatorSettings | None = None,
    namespaces: Sequence[str] = (),
    all_namespaces: bool = False,
    standalone: bool = True,
    peering: str | None = None,
    liveness: str | None = None,
    verbose: bool = False,
    debug: bool = False,
    quiet: bool = False,
) -> None:
    """Serve FelesSimulations in `namespaces` (or all of them) until SIGINT/SIGTERM.

    `settings` reach the startup handler through kopf's memo; None: it reads FELES_* environment variables.
    """
    if not namespaces and not all_namespaces:
        raise ValueError("give namespaces to watch, or all_namespaces")
    kopf.configure(debug=debug, verbose=verbose, quiet=quiet)
    import feles_operator  # noqa: F401  (registers the handlers)

    memo = kopf.Memo() if settings is None else kopf.Memo(settings=settings)
    kopf.run(
        clusterwide=all_namespaces,
        namespaces=list(namespaces),
        standalone=standalone if peering is None else False,
        peering_name=peering,
        liveness_endpoint=liveness,
        memo=memo,
    )
