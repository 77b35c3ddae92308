"""The FelesSweep controller in the real kopf operator against kmock (real HTTP), cells' phases set by hand.

The cells' FelesSimulations get their phases the way the poller writes them (a status patch); no
orchestrator runs, and the poller is silenced. kmock has no garbage collector: deletion is checked through the
owner references.
"""

from __future__ import annotations

from typing import Any

import pytest

from feles_operator.simulation import names
from feles_operator.simulation.poller import StatusPoller
from feles_operator.sweep import names as sweep_names
from tests.operator.test_operator_kmock import (
    CRS,
    DIABETES,
    DIGITS,
    NAMESPACE,
    SWEEPS,
    Cluster,
    cluster,
    orchestrator_port,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]
#: The operator against kmock, as tests/operator/test_operator_kmock.py runs it (pytest finds fixtures by name).
FIXTURES = (cluster, orchestrator_port)


@pytest.fixture(autouse=True)
def quiet_poller(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test writes the cells' phases; the poller (no orchestrator to reach here) must not write over them."""

    async def poll_all(self: StatusPoller) -> None:
        return None

    monkeypatch.setattr(StatusPoller, "poll_all", poll_all)


ALPHA = {"path": "data.non_iid_partitions", "values": [0.5, 10.0], "name": "alpha"}
SWEEP_URL = f"/apis/{names.API_VERSION}/namespaces/{NAMESPACE}/{sweep_names.PLURAL}"


async def create_sweep(cluster: Cluster, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = {
        "apiVersion": names.API_VERSION,
        "kind": sweep_names.KIND,
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "generation": 1,
        },
        "spec": spec,
    }
    response = await cluster.server.post(SWEEP_URL, json=body)
    assert response.status == 200, await response.text()
    return body


async def patch(cluster: Cluster, url: str, document: dict[str, Any]) -> None:
    response = await cluster.server.patch(url, json=document)
    assert response.status == 200, await response.text()


async def set_phase(cluster: Cluster, simulation: str, phase: str, accuracy: float | None = None) -> None:
    """Write a cell's phase as the poller does when its orchestrator reports it (after the cell's first status)."""
    await cluster.wait_for(f"{simulation} created", lambda: (cluster.get(CRS, simulation) or {}).get("status"))
    status = {"phase": phase, "accuracy": accuracy, "loss": None if accuracy is None else 1 - accuracy}
    await patch(
        cluster, f"/apis/{names.API_VERSION}/namespaces/{NAMESPACE}/{names.PLURAL}/{simulation}", {"status": status}
    )


def cells(cluster: Cluster, sweep: str) -> dict[str, dict[str, Any]]:
    """The sweep's FelesSimulations by name."""
    found = {}
    for resource, namespace, name in list(cluster.server.objects.keys()):
        obj = cluster.get(CRS, name) if resource.plural == names.PLURAL and namespace == NAMESPACE else None
        if obj is not None and obj["metadata"].get("labels", {}).get(sweep_names.SWEEP_LABEL) == sweep:
            found[name] = obj
    return found


def kept(cluster: Cluster, simulation: str) -> tuple[Any, ...]:
    """What must not change in a finished cell: its spec, status and owner."""
    obj = cluster.get(CRS, simulation) or {}
    return obj.get("spec"), obj.get("status"), obj.get("metadata", {}).get("ownerReferences")


def status(cluster: Cluster, sweep: str) -> dict[str, Any]:
    return (cluster.get(SWEEPS, sweep) or {}).get("status") or {}


async def test_cells_are_owned_capped_by_parallelism_and_counted_up_to_the_best(cluster: Cluster) -> None:
    spec = {"base": DIGITS, "axes": [ALPHA], "seeds": [1, 2], "parallelism": 2, "template": {"workers": 1}}
    await create_sweep(cluster, "grid", spec)
    first = await cluster.wait_for("two cells", lambda: len(cells(cluster, "grid")) == 2 and cells(cluster, "grid"))
    assert sorted(first) == ["grid-alpha-0p5-seed-1", "grid-alpha-0p5-seed-2"]
    owner = {
        "apiVersion": names.API_VERSION,
        "kind": sweep_names.KIND,
        "name": "grid",
        "uid": "uid-grid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    cell = first["grid-alpha-0p5-seed-2"]
    assert cell["metadata"]["ownerReferences"] == [owner]
    assert cell["metadata"]["labels"][sweep_names.SWEEP_LABEL] == "grid"
    assert cell["metadata"]["labels"][sweep_names.CELL_LABEL] == "alpha-0p5-seed-2"
    assert cell["metadata"]["annotations"][sweep_names.VALUES_ANNOTATION] == (
        '{"data.non_iid_partitions": 0.5, "simulation.seed": 2}'
    )
    assert cell["spec"]["workers"] == 1
    simulation = cell["spec"]["simulation"]
    assert (simulation["data"]["non_iid_partitions"], simulation["simulation"]["seed"]) == (0.5, 2)
    assert simulation["simulation"]["dataset"] == "digits" and simulation["devices"]["num"] == 20
    # Each cell is a FelesSimulation like any other: the operator makes its orchestrator and workers.
    await cluster.wait_for(
        "a cell's workers", lambda: cluster.get("apps/v1/statefulsets", "grid-alpha-0p5-seed-1-worker")
    )

    running = await cluster.wait_for(
        "two Pending cells counted", lambda: status(cluster, "grid").get("counts", {}).get("pending") == 2
    )
    running = status(cluster, "grid")
    assert (running["phase"], running["progress"], running["running"], running["cells"]) == ("Running", "0/4", 2, 4)
    assert running["counts"] == {"waiting": 2, "pending": 2, "running": 0, "succeeded": 0, "failed": 0}
    assert [cell["phase"] for cell in running["simulations"]] == ["Pending", "Pending", "Waiting", "Waiting"]
    conditions = {item["type"]: item for item in running["conditions"]}
    assert (conditions["Progressing"]["status"], conditions["Progressing"]["reason"]) == ("True", "CellsRunning")
    assert conditions["Completed"]["status"] == "False" and conditions["Failed"]["status"] == "False"
    assert not cluster.get(SWEEPS, "grid")["metadata"].get("finalizers")

    # One cell finishes: one more starts, never more than two unfinished.
    await set_phase(cluster, "grid-alpha-0p5-seed-1", "Succeeded", 0.8)
    await cluster.wait_for("a third cell", lambda: len(cells(cluster, "grid")) == 3)
    await cluster.wait_for("1/4 done", lambda: status(cluster, "grid").get("progress") == "1/4")
    assert "grid-alpha-10-seed-1" in cells(cluster, "grid") and status(cluster, "grid")["running"] == 2
    assert status(cluster, "grid")["bestSummary"] == "accuracy 0.8000 alpha-0p5-seed-1"
    await set_phase(cluster, "grid-alpha-0p5-seed-2", "Running")
    await cluster.wait_for("one running", lambda: status(cluster, "grid")["counts"]["running"] == 1)
    assert len(cells(cluster, "grid")) == 3  # a Running cell still holds its place

    await set_phase(cluster, "grid-alpha-0p5-seed-2", "Succeeded", 0.6)
    await cluster.wait_for("the fourth cell", lambda: len(cells(cluster, "grid")) == 4)
    await set_phase(cluster, "grid-alpha-10-seed-1", "Succeeded", 0.9)
    await set_phase(cluster, "grid-alpha-10-seed-2", "Succeeded", 0.7)
    final = await cluster.wait_for(
        "Succeeded", lambda: status(cluster, "grid").get("phase") == "Succeeded" and status(cluster, "grid")
    )
    assert (final["progress"], final["running"], final["counts"]["succeeded"]) == ("4/4", 0, 4)
    assert final["best"] == {
        "cell": "alpha-10-seed-1",
        "simulation": "grid-alpha-10-seed-1",
        "metric": "accuracy",
        "mode": "max",
        "value": 0.9,
    }
    assert final["message"] == "4 cells: 4 succeeded; best accuracy 0.9000 alpha-10-seed-1"
    assert final["startTime"] <= final["completionTime"]
    conditions = {item["type"]: item for item in final["conditions"]}
    assert (conditions["Completed"]["status"], conditions["Completed"]["reason"]) == ("True", "AllCellsSucceeded")
    assert conditions["Progressing"]["status"] == "False"
    await cluster.wait_for("the event", lambda: [e for e in cluster.events("grid") if e["reason"] == "SweepSucceeded"])
    reasons = [event["reason"] for event in cluster.events("grid")]
    assert reasons.count("Created") == 3 and reasons.count("SweepSucceeded") == 1  # cells made 2 + 1 + 1

    # Deleting the sweep: no finalizer holds it, its cells go with it (garbage collection, by their owner
    # reference); a cell that still reports afterwards finds no sweep and changes nothing.
    response = await cluster.server.delete(f"{SWEEP_URL}/grid")
    assert response.status == 200
    assert cluster.get(SWEEPS, "grid") is None
    await set_phase(cluster, "grid-alpha-10-seed-2", "Failed")
    assert all(cell["metadata"]["ownerReferences"][0]["uid"] == "uid-grid" for cell in cells(cluster, "grid").values())


async def test_changed_axes_add_cells_and_keep_finished_ones(cluster: Cluster) -> None:
    await create_sweep(cluster, "axes", {"base": DIGITS, "axes": [{**ALPHA, "values": [0.5]}], "parallelism": 3})
    await cluster.wait_for("one cell", lambda: cells(cluster, "axes"))
    await set_phase(cluster, "axes-alpha-0p5", "Succeeded", 0.75)
    await cluster.wait_for("Succeeded", lambda: status(cluster, "axes").get("phase") == "Succeeded")
    finished = kept(cluster, "axes-alpha-0p5")

    # More values: the missing cells start; the finished one is neither restarted nor changed.
    url = f"{SWEEP_URL}/axes"
    await patch(
        cluster, url, {"spec": {"axes": [{**ALPHA, "values": [0.5, 10.0, 100.0]}]}, "metadata": {"generation": 2}}
    )
    await cluster.wait_for("three cells", lambda: len(cells(cluster, "axes")) == 3)
    assert kept(cluster, "axes-alpha-0p5") == finished
    grown = await cluster.wait_for(
        "0/3 ... 1/3", lambda: status(cluster, "axes").get("progress") == "1/3" and status(cluster, "axes")
    )
    assert grown["phase"] == "Running" and grown["observedGeneration"] == 2
    assert grown["best"]["cell"] == "alpha-0p5"

    # A value gone from the grid: its cell is kept and listed as orphaned; the grid is the other two.
    await patch(cluster, url, {"spec": {"axes": [{**ALPHA, "values": [10.0, 100.0]}]}, "metadata": {"generation": 3}})
    shrunk = await cluster.wait_for(
        "an orphan", lambda: status(cluster, "axes").get("orphaned") and status(cluster, "axes")
    )
    assert shrunk["orphaned"] == ["alpha-0p5"] and shrunk["progress"] == "0/2" and shrunk["cells"] == 2
    assert "best" not in shrunk
    assert kept(cluster, "axes-alpha-0p5") == finished

    # A cell deleted by hand is made again (a way to re-run one cell).
    url = f"/apis/{names.API_VERSION}/namespaces/{NAMESPACE}/{names.PLURAL}/axes-alpha-100"
    assert (await cluster.server.delete(url)).status == 200
    assert cluster.get(CRS, "axes-alpha-100") is None
    await cluster.wait_for("the cell made again", lambda: cluster.get(CRS, "axes-alpha-100"))


async def test_an_invalid_cell_fails_the_sweep_before_any_cell_runs(cluster: Cluster) -> None:
    axes = [{"path": "simulation.stop_conds.metric", "values": [0.9, 2], "name": "t"}]  # an accuracy is at most 1
    await create_sweep(cluster, "bad", {"base": DIGITS, "axes": axes})
    failed = await cluster.wait_for(
        "Failed", lambda: status(cluster, "bad").get("phase") == "Failed" and status(cluster, "bad")
    )
    assert "cell t-2: simulation.stop_conds.metric: an accuracy is at most 1" in failed["message"]
    conditions = {item["type"]: item for item in failed["conditions"]}
    assert (conditions["Failed"]["status"], conditions["Failed"]["reason"]) == ("True", "InvalidSpec")
    assert cells(cluster, "bad") == {}
    warnings = await cluster.wait_for("a warning", lambda: [e for e in cluster.events("bad") if e["type"] == "Warning"])
    assert warnings[0]["reason"] == "InvalidSpec"


async def set_regression_status(cluster: Cluster, simulation: str, mae: float, loss: float) -> None:
    """A regression cell's final status as the poller writes it: its metric mae, no accuracy."""
    await cluster.wait_for(f"{simulation} created", lambda: (cluster.get(CRS, simulation) or {}).get("status"))
    document = {"phase": "Succeeded", "metric": "mae", "metricValue": mae, "loss": loss}
    url = f"/apis/{names.API_VERSION}/namespaces/{NAMESPACE}/{names.PLURAL}/{simulation}"
    await patch(cluster, url, {"status": document})


async def test_a_regression_sweep_names_the_cell_of_the_lowest_mae_best(cluster: Cluster) -> None:
    spec = {"base": DIABETES, "axes": [ALPHA], "parallelism": 2, "template": {"workers": 1}}
    await create_sweep(cluster, "reg", spec)
    await set_regression_status(cluster, "reg-alpha-0p5", 52.25, 4100.0)
    await set_regression_status(cluster, "reg-alpha-10", 48.5, 4300.0)
    final = await cluster.wait_for(
        "Succeeded", lambda: status(cluster, "reg").get("phase") == "Succeeded" and status(cluster, "reg")
    )
    assert final["best"] == {
        "cell": "alpha-10",
        "simulation": "reg-alpha-10",
        "metric": "mae",
        "mode": "min",
        "value": 48.5,
    }
    assert final["bestSummary"] == "mae 48.5000 alpha-10"
    assert final["message"] == "2 cells: 2 succeeded; best mae 48.5000 alpha-10"
    assert [(cell["metric"], cell["metricValue"]) for cell in final["simulations"]] == [("mae", 52.25), ("mae", 48.5)]

    # Ranked by the loss instead (best may change): the other cell.
    url = f"{SWEEP_URL}/reg"
    await patch(cluster, url, {"spec": {"best": {"metric": "loss"}}, "metadata": {"generation": 2}})
    by_loss = await cluster.wait_for(
        "the best by loss",
        lambda: status(cluster, "reg").get("best", {}).get("metric") == "loss" and status(cluster, "reg"),
    )
    assert (by_loss["best"]["cell"], by_loss["best"]["value"]) == ("alpha-0p5", 4100.0)


async def test_an_accuracy_objective_on_regression_cells_fails_naming_the_field(cluster: Cluster) -> None:
    await create_sweep(cluster, "wrong", {"base": DIABETES, "axes": [ALPHA], "best": {"metric": "accuracy"}})
    failed = await cluster.wait_for(
        "Failed", lambda: status(cluster, "wrong").get("phase") == "Failed" and status(cluster, "wrong")
    )
    assert "spec.best.metric: accuracy does not apply: cell alpha-0p5 (and 1 more) measures mae" in failed["message"]
    assert cells(cluster, "wrong") == {}
