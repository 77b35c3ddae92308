"""The operator's own start and stop (kopf's startup and cleanup), for every kind it serves.

The startup configures kopf, takes the settings (from the memo `feles operator` hands to kopf, else from the
FELES_* environment of `kopf run -m feles_operator`), connects to the API, waits for each kind's CRD and
starts each kind's background loop. A kind's package announces itself with `serve(ServedKind(...))`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import kopf

from feles_operator import names
from feles_operator.kube import ApiError, KubeApi
from feles_operator.settings import OperatorSettings, SettingsError

#: How long the operator waits at startup for a CRD to be served (`kubectl apply -f manifests/` races).
CRD_WAIT_SECONDS = 120.0


class Background(Protocol):
    """A kind's loop beside kopf's handlers (a poller): runs until cancelled, then closes."""

    async def run(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class ServedKind:
    """What the operator-level startup needs of one custom resource kind."""

    plural: str
    crd_name: str
    #: The kopf index (its handler's name) that the background loop reads, if any.
    index: str | None = None
    #: Builds the background loop from the API client, the settings and that index.
    background: Callable[[KubeApi, OperatorSettings, Any], Background] | None = None


#: The kinds served, in the order their packages were imported.
SERVED: list[ServedKind] = []


def serve(kind: ServedKind) -> None:
    SERVED.append(kind)


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf's settings for this operator."""
    # No runtime discovery of CRDs and namespaces: no cluster-wide read access needed for them.
    settings.scanning.disabled = True
    # kopf's bookkeeping lives in feles.io/ annotations, so that `.status` holds only the schema's fields.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.GROUP, key="last-handled-configuration"
    )
    # The operator posts its own events (Created, RoundFinished, ...); kopf's only for its warnings.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = names.MANAGER


def operator_settings(memo: kopf.Memo) -> OperatorSettings:
    """The settings given in the memo (`feles operator`), else those of the FELES_* environment variables."""
    given = memo.get("settings")
    if isinstance(given, OperatorSettings):
        return given
    try:
        return OperatorSettings.from_env()
    except SettingsError as error:
        raise kopf.PermanentError(str(error)) from None


async def wait_for_crd(api: KubeApi, kind: ServedKind, logger: logging.Logger | Any, timeout: float) -> None:
    """Block until the API serves the kind (its CRD may be applied in the same breath as the operator)."""
    deadline = time.monotonic() + timeout
    url = f"/apis/{names.API_VERSION}"
    while True:
        try:
            served = {item.get("name") for item in (await api.get(url)).get("resources") or []}
            if kind.plural in served:
                return
        except (ApiError, OSError) as error:
            if time.monotonic() > deadline:
                raise kopf.PermanentError(f"the CRD {kind.crd_name} is not served: {error}") from None
        if time.monotonic() > deadline:
            raise kopf.PermanentError(f"the CRD {kind.crd_name} is not served after {timeout:.0f} s")
        logger.info("waiting for the CRD %s to be served", kind.crd_name)
        await asyncio.sleep(2.0)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: Any, **kwargs: Any) -> None:
    configure(settings)
    memo.settings = operator_settings(memo)
    memo.api = KubeApi.from_environment()
    memo.background = []
    for kind in SERVED:
        await wait_for_crd(memo.api, kind, logger, CRD_WAIT_SECONDS)
    for kind in SERVED:
        if kind.background is not None:
            # kopf hands every index to every handler as a keyword argument named after it.
            loop = kind.background(memo.api, memo.settings, kwargs[kind.index] if kind.index else None)
            task = asyncio.create_task(loop.run(), name=f"feles {kind.plural} background")
            memo.background.append((loop, task))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    for loop, task in memo.get("background", ()):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await loop.close()
    if memo.get("api") is not None:
        memo.api.close()
