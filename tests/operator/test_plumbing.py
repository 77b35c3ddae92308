"""Small pure pieces: REST paths, event objects, the poller's choice between its own write and the index."""

from __future__ import annotations

import kubernetes.client
import pytest

from feles_operator import events
from feles_operator.events import Event
from feles_operator.kube import ApiError, KubeApi, object_path, path
from feles_operator.settings import OperatorSettings
from feles_operator.simulation.poller import Indexed, StatusPoller, Written
from feles_operator.simulation.status.schema import FelesSimulationStatus

INVOLVED = {"apiVersion": "feles.io/v1alpha1", "kind": "FelesSimulation", "name": "demo", "namespace": "ns", "uid": "u"}


def test_paths() -> None:
    assert path("v1", "pods", "ns") == "/api/v1/namespaces/ns/pods"
    assert path("apps/v1", "statefulsets", "ns", "w") == "/apis/apps/v1/namespaces/ns/statefulsets/w"
    assert path("feles.io/v1alpha1", "felessimulations", "ns", "d", "status") == (
        "/apis/feles.io/v1alpha1/namespaces/ns/felessimulations/d/status"
    )
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}}
    assert object_path(secret) == "/api/v1/namespaces/ns/secrets/s"
    assert object_path(secret, named=False) == "/api/v1/namespaces/ns/secrets"


def test_event_objects() -> None:
    first = events.event_object(INVOLVED, Event("Normal", "RoundFinished", "round 1/2 finished"), 0.0, "operator-1")
    second = events.event_object(INVOLVED, Event("Warning", "Oops", "x" * 5000), 0.0, "operator-1")
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert first["metadata"]["name"].startswith("demo.") and first["metadata"]["namespace"] == "ns"
    assert first["involvedObject"] == INVOLVED
    assert (first["type"], first["reason"], first["count"]) == ("Normal", "RoundFinished", 1)
    assert first["source"] == {"component": "feles-operator"} and first["reportingInstance"] == "operator-1"
    assert first["firstTimestamp"] == "1970-01-01T00:00:00Z"
    assert len(second["message"]) == events.MAX_MESSAGE and second["message"].endswith("...")
    body = {"apiVersion": "feles.io/v1alpha1", "kind": "FelesSimulation", "metadata": {**INVOLVED, "labels": {}}}
    assert events.involved_object(body) == INVOLVED


def entry(resource_version: str, phase: str) -> Indexed:
    return Indexed("ns", "demo", "u", 1, resource_version, 2, False, {"phase": phase})


@pytest.mark.parametrize(
    ("index_version", "expected"),
    [("10", "Running"), ("11", "Pending"), ("12", "Pending")],
    ids=["index-behind-our-write", "index-caught-up", "someone-wrote-after-us"],
)
def test_poller_trusts_its_own_write_only_while_the_index_lags(index_version: str, expected: str) -> None:
    poller = StatusPoller(api=None, settings=OperatorSettings(), index={})  # type: ignore[arg-type]
    poller.written["u"] = Written("10", "11", FelesSimulationStatus(phase="Running"))
    assert poller.previous(entry(index_version, "Pending")).phase == expected


@pytest.mark.asyncio
async def test_an_unreachable_api_is_an_api_error() -> None:
    configuration = kubernetes.client.Configuration()
    configuration.host, configuration.retries = "http://127.0.0.1:1", 0
    api = KubeApi(kubernetes.client.ApiClient(configuration), timeout=2)
    with pytest.raises(ApiError) as caught:
        await api.get("/api/v1/pods")
    assert caught.value.status == 0 and "Connection refused" in str(caught.value)
