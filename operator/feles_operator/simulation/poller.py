"""Polls every simulation's orchestrator and writes what it learns into the FelesSimulation's status.

Why not a `@kopf.timer`: kopf puts a finalizer on every object a timer or daemon serves, and a finalizer
blocks `kubectl delete` while the operator is down. One operator-level loop over a kopf index (which needs
no finalizer) polls instead; all it remembers lives in `.status`, so a restarted operator carries on.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from feles.protocol import SimulationStatus
from feles_operator import events
from feles_operator.events import Event
from feles_operator.kube import ApiError, KubeApi, path
from feles_operator.patches import status_patch
from feles_operator.settings import OperatorSettings
from feles_operator.simulation import names
from feles_operator.simulation.reconcile import scale_workers
from feles_operator.simulation.status.observation import Observation, PodSummary
from feles_operator.simulation.status.pods import summarize_pods
from feles_operator.simulation.status.schema import TERMINAL, FelesSimulationStatus
from feles_operator.simulation.status.transitions import next_status

log = logging.getLogger("feles_operator.poller")

#: Simulations polled at once (each poll is a few API calls and one HTTP request).
CONCURRENCY = 16


@dataclass(frozen=True)
class Indexed:
    """What the kopf index keeps of one FelesSimulation (refreshed on every watch event)."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    resource_version: str | None
    desired_workers: int
    deleting: bool
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def involved(self) -> dict[str, Any]:
        return {
            "apiVersion": names.API_VERSION,
            "kind": names.KIND,
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
        }


@dataclass(frozen=True)
class Written:
    """A status this poller wrote, and the resourceVersion before and after the write."""

    before: str | None
    after: str | None
    status: FelesSimulationStatus


class StatusPoller:
    def __init__(self, api: KubeApi, settings: OperatorSettings, index: Any) -> None:
        self.api = api
        self.settings = settings
        self.index = index
        self.http = httpx.AsyncClient(timeout=settings.request_timeout)
        self.written: dict[str, Written] = {}
        self.tokens: dict[str, str] = {}
        self.semaphore = asyncio.Semaphore(CONCURRENCY)

    async def run(self) -> None:
        """Poll every simulation each interval, forever (cancel to stop)."""
        log.info("polling orchestrators every %.1f s", self.settings.poll_interval)
        while True:
            started = time.monotonic()
            await self.poll_all()
            await asyncio.sleep(max(0.0, self.settings.poll_interval - (time.monotonic() - started)))

    async def close(self) -> None:
        await self.http.aclose()

    def entries(self) -> list[Indexed]:
        return [entry for store in list(self.index.values()) for entry in list(store)]

    async def poll_all(self) -> None:
        entries = self.entries()
        alive = {entry.uid for entry in entries}
        for uid in set(self.written) - alive:
            self.written.pop(uid, None)
        for uid in set(self.tokens) - alive:
            self.tokens.pop(uid, None)
        results = await asyncio.gather(*(self._guarded(entry) for entry in entries), return_exceptions=True)
        for entry, result in zip(entries, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.warning("polling %s/%s failed: %s", entry.namespace, entry.name, result)

    async def _guarded(self, entry: Indexed) -> None:
        async with self.semaphore:
            await self.poll(entry)

    def previous(self, entry: Indexed) -> FelesSimulationStatus:
        """The latest status: ours if the index has not caught up with our last write, else the index's."""
        written = self.written.get(entry.uid)
        if written is not None and entry.resource_version == written.before:
            return written.status
        return FelesSimulationStatus.parse(entry.status)

    async def poll(self, entry: Indexed) -> None:
        """Observe one simulation, then patch its status (only if it changed) and post the events."""
        old = self.previous(entry)
        if entry.deleting or old.phase is None:
            return  # not reconciled yet, or going away: nothing to ask the orchestrator
        if old.phase in TERMINAL:
            await self.follow_finished_workers(entry, old)
            return  # finished: nothing more to ask the orchestrator
        document, error = await self.fetch_status(entry)
        pods = await self.observe_pods(entry)
        workers_url = path("apps/v1", "statefulsets", entry.namespace, names.workers(entry.name))
        workers = await self.api.get_or_none(workers_url)
        ready = int(((workers or {}).get("status") or {}).get("readyReplicas") or 0)
        observation = Observation(
            now=time.time(),
            generation=entry.generation,
            desired_workers=entry.desired_workers,
            workers_ready=ready,
            orchestrator=document,
            error=error,
            pods=pods,
            unreachable_after=self.settings.unreachable_after,
        )
        new, news = next_status(old, observation)
        if new.phase in TERMINAL and workers is not None and (workers.get("spec") or {}).get("replicas"):
            # Workers exit 0 once the simulation is over, and a StatefulSet would restart them forever.
            await scale_workers(self.api, entry.name, entry.namespace, 0)
            news.append(Event("Normal", "WorkersReleased", "the simulation is over: workers scaled to 0"))
        if new.dump() != old.dump():
            await self.write(entry, old, new)
        await events.post(self.api, entry.involved, news, observation.now)

    async def follow_finished_workers(self, entry: Indexed, old: FelesSimulationStatus) -> None:
        """A finished simulation's workers are scaled to 0: `.status.workersReady` (the Workers column and the
        scale subresource's status) follows the StatefulSet down to 0, then polling it stops."""
        if not old.workers_ready:
            return
        workers_url = path("apps/v1", "statefulsets", entry.namespace, names.workers(entry.name))
        workers = await self.api.get_or_none(workers_url)
        ready = int(((workers or {}).get("status") or {}).get("readyReplicas") or 0)
        if ready != old.workers_ready:
            new = old.model_copy(deep=True)
            new.workers_ready = ready
            await self.write(entry, old, new)

    async def write(self, entry: Indexed, old: FelesSimulationStatus, status: FelesSimulationStatus) -> None:
        url = path(names.API_VERSION, names.PLURAL, entry.namespace, entry.name, "status")
        # Both what we wrote last and what the index shows may hold keys that are gone now.
        stored = FelesSimulationStatus.parse(entry.status).dump()
        response = await self.api.patch(url, {"status": status_patch(status.dump(), old.dump(), stored)})
        after = (response.get("metadata") or {}).get("resourceVersion")
        self.written[entry.uid] = Written(before=entry.resource_version, after=after, status=status)

    async def token(self, entry: Indexed) -> str | None:
        if entry.uid not in self.tokens:
            url = path("v1", "secrets", entry.namespace, names.token_secret(entry.name))
            secret = await self.api.get_or_none(url)
            encoded = ((secret or {}).get("data") or {}).get(names.TOKEN_KEY)
            if not encoded:
                return None
            self.tokens[entry.uid] = base64.b64decode(encoded).decode()
        return self.tokens[entry.uid]

    async def fetch_status(self, entry: Indexed) -> tuple[SimulationStatus | None, str | None]:
        """The orchestrator's /v1/status document, or None and why not."""
        token = await self.token(entry)
        if token is None:
            return None, f"no Secret {names.token_secret(entry.name)} with the API token"
        url = f"{self.settings.url(entry.name, entry.namespace)}/v1/status"
        try:
            response = await self.http.get(url, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as error:
            return None, f"{type(error).__name__}: {error}"
        if response.status_code != 200:
            if response.status_code == 401:
                self.tokens.pop(entry.uid, None)  # read the Secret again next time
            return None, f"HTTP {response.status_code} from {url}"
        try:
            return SimulationStatus.model_validate_json(response.content), None
        except ValidationError as error:
            return None, f"unexpected /v1/status document: {error.errors()[0]['msg']}"

    async def observe_pods(self, entry: Indexed) -> PodSummary:
        selector = names.selector_string({names.SIMULATION_LABEL: entry.name})
        try:
            pods: Iterable[dict[str, Any]] = await self.api.list(
                path("v1", "pods", entry.namespace), label_selector=selector
            )
        except ApiError as error:
            log.warning("cannot list the pods of %s/%s: %s", entry.namespace, entry.name, error)
            return PodSummary()
        return summarize_pods(pods, entry.name)
