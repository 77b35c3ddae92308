"""A finished simulation's Workers column follows its StatefulSet down to 0 (issue 12.10)."""

from __future__ import annotations

from typing import Any

import pytest

from feles_operator.settings import OperatorSettings
from feles_operator.simulation.poller import Indexed, StatusPoller


class FakeApi:
    """The two calls the poller makes for a finished simulation: read the StatefulSet, patch the status."""

    def __init__(self, ready: int) -> None:
        self.ready = ready
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.reads = 0

    async def get_or_none(self, url: str) -> dict[str, Any] | None:
        self.reads += 1
        assert url == "/apis/apps/v1/namespaces/ns/statefulsets/demo-worker"
        return {"spec": {"replicas": 0}, "status": {"readyReplicas": self.ready} if self.ready else {}}

    async def patch(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        self.patches.append((url, body))
        return {"metadata": {"resourceVersion": str(100 + len(self.patches))}}


def finished(workers_ready: int, version: str = "1") -> Indexed:
    status = {"phase": "Succeeded", "workersReady": workers_ready, "round": 4, "message": "done"}
    return Indexed("ns", "demo", "u", 1, version, 2, False, status)


@pytest.mark.asyncio
async def test_workers_ready_follows_the_statefulset_after_the_end() -> None:
    api = FakeApi(ready=1)
    poller = StatusPoller(api=api, settings=OperatorSettings(), index={})  # type: ignore[arg-type]
    await poller.poll(finished(workers_ready=2))
    [(url, body)] = api.patches
    assert url.endswith("/felessimulations/demo/status")
    assert body["status"]["workersReady"] == 1
    assert body["status"].get("phase", "Succeeded") == "Succeeded"

    api.ready = 0
    await poller.poll(finished(workers_ready=1, version="101"))
    assert api.patches[-1][1]["status"]["workersReady"] == 0


@pytest.mark.asyncio
async def test_a_finished_simulation_with_no_ready_workers_is_not_polled() -> None:
    api = FakeApi(ready=0)
    poller = StatusPoller(api=api, settings=OperatorSettings(), index={})  # type: ignore[arg-type]
    await poller.poll(finished(workers_ready=0))
    assert api.reads == 0 and api.patches == []
