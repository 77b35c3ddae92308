"""Parsing a FelesSimulation's .spec: defaults, every error with its field, rules no schema can express."""

from __future__ import annotations

import pytest

from feles_operator.simulation.resource import ResourceError, parse_resource

DIGITS = {"simulation": {"dataset": "digits"}, "devices": {"num": 20}}


def errors_of(spec: dict) -> list[tuple[str, str]]:
    with pytest.raises(ResourceError) as caught:
        parse_resource(spec)
    return caught.value.errors


def test_defaults() -> None:
    spec = parse_resource({"simulation": DIGITS})
    assert spec.workers == 2
    assert spec.image is None and spec.storage is None and spec.orchestrator is None
    assert spec.simulation.simulation.dataset == "digits"
    assert spec.simulation.devices.num == 20


def test_camel_case_fields() -> None:
    spec = parse_resource(
        {
            "simulation": DIGITS,
            "imagePullPolicy": "Always",
            "imagePullSecrets": [{"name": "registry"}],
            "worker": {"nodeSelector": {"pool": "cpu"}, "tolerations": [{"key": "k", "tolerationSeconds": 5}]},
            "storage": {"results": {"claimName": "mine"}, "data": {"claimName": "datasets", "subPath": "fmnist"}},
        }
    )
    assert spec.image_pull_policy == "Always"
    assert spec.worker.node_selector == {"pool": "cpu"}
    assert spec.worker.tolerations[0].toleration_seconds == 5
    assert spec.storage.results.claim_name == "mine"
    assert spec.storage.data.read_only is True


def test_cross_field_rules_of_the_simulation_name_their_field() -> None:
    spec = {"simulation": {**DIGITS, "network": {"speed_mean": 10, "speed_var": 10}, "energy": {"avail_var": 1e9}}}
    speed = "must be smaller than network.speed_mean (10.0) so that every draw is positive"
    energy = "must be at most energy.avail_mean (25000) so that every draw is non-negative"
    assert errors_of(spec) == [
        ("spec.simulation.network.speed_var", speed),
        ("spec.simulation.energy.avail_var", energy),
    ]


def test_every_error_is_reported_at_once() -> None:
    found = errors_of(
        {
            "simulation": {"devices": {"num": 0}, "surprise": 1},
            "workers": -1,
            "imagePullPolicy": "Sometimes",
            "storage": {"results": {"claimName": "a", "size": "1Gi"}},
            "orchestrator": {"resources": {"limits": {"cpu": "2 cores"}}},
            "bogus": True,
        }
    )
    paths = [path for path, _ in found]
    assert paths == [
        "spec.simulation.devices.num",
        "spec.simulation.surprise",
        "spec.workers",
        "spec.imagePullPolicy",
        "spec.orchestrator.resources.limits.cpu",
        "spec.storage.results",
        "spec.bogus",
    ]
    messages = dict(found)
    assert messages["spec.simulation.surprise"] == "unknown key"
    assert messages["spec.bogus"] == "unknown key"
    assert "'2 cores' is not a quantity" in messages["spec.orchestrator.resources.limits.cpu"]
    assert messages["spec.storage.results"].startswith("set exactly one of claimName")


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ({"results": {}}, "set exactly one of claimName"),
        ({"results": {"claimName": "a", "storageClassName": "fast"}}, "storageClassName needs size"),
        ({"data": {}}, "Field required"),
    ],
)
def test_storage_rules(storage: dict, message: str) -> None:
    assert message in errors_of({"simulation": DIGITS, "storage": storage})[0][1]


def test_missing_simulation() -> None:
    assert errors_of({"workers": 3}) == [("spec.simulation", "required")]


def test_quantities() -> None:
    spec = parse_resource(
        {
            "simulation": DIGITS,
            "worker": {"resources": {"requests": {"cpu": "250m", "memory": "1.5Gi"}, "limits": {"cpu": 2}}},
        }
    )
    assert spec.worker.resources.requests == {"cpu": "250m", "memory": "1.5Gi"}
    assert spec.worker.resources.limits == {"cpu": 2}
    assert (
        "must not be negative"
        in errors_of({"simulation": DIGITS, "worker": {"resources": {"limits": {"cpu": -1}}}})[0][1]
    )
