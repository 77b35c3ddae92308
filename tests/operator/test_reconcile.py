"""Pure parts of reconciliation: workload drift, desired replicas."""

from __future__ import annotations

from feles_operator.settings import OperatorSettings
from feles_operator.simulation.builders import Simulation, orchestrator_deployment, worker_stateful_set
from feles_operator.simulation.builders.common import TEMPLATE_HASH_ANNOTATION
from feles_operator.simulation.reconcile import desired_replicas, new_token, workload_patch
from feles_operator.simulation.resource import parse_resource

SPEC = {"simulation": {"simulation": {"dataset": "digits"}}, "workers": 3}


def simulation(**changes: object) -> Simulation:
    return Simulation("demo", "ns", parse_resource({**SPEC, **changes}), OperatorSettings())


def test_desired_replicas() -> None:
    spec = parse_resource(SPEC)
    assert desired_replicas(spec, None) == 3 and desired_replicas(spec, "Running") == 3
    assert desired_replicas(spec, "Succeeded") == 0 and desired_replicas(spec, "Failed") == 0


def test_unchanged_workloads_are_left_alone() -> None:
    sts = worker_stateful_set(simulation(), 3)
    existing = {**sts, "status": {"readyReplicas": 3}}
    assert workload_patch(existing, sts) == {}


def test_replicas_drift_is_fixed_without_touching_the_template() -> None:
    existing = worker_stateful_set(simulation(), 5)
    assert workload_patch(existing, worker_stateful_set(simulation(), 0)) == {"spec": {"replicas": 0}}


def test_new_image_rolls_the_template() -> None:
    existing = orchestrator_deployment(simulation())
    desired = orchestrator_deployment(simulation(image="other/feles:2"))
    patch = workload_patch(existing, desired)
    new_hash = desired["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION]
    assert patch["metadata"] == {"annotations": {TEMPLATE_HASH_ANNOTATION: new_hash}}
    containers = patch["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "other/feles:2"  # lists are replaced whole by a merge patch
    assert "replicas" not in patch["spec"]
    assert workload_patch(existing, desired, roll=False) == {}  # an operator restart restarts no pod


def test_tokens_are_random_and_long() -> None:
    first, second = new_token(), new_token()
    assert first != second and len(first) >= 43
