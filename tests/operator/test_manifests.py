"""manifests/: the CRD, the operator without Helm (kept in step with the chart) and the example simulation."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from feles_operator.settings import OperatorSettings
from feles_operator.simulation import names
from feles_operator.simulation.builders import Simulation, build_children
from feles_operator.simulation.resource import parse_resource
from tests.operator.helm import MANIFESTS, operator_manifest
from tests.operator.tools import ToolsUnavailable, missing_tool, tool


def documents(name: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all((MANIFESTS / name).read_text()) if document]


def test_operator_manifest_is_the_rendered_chart() -> None:
    try:
        tool("helm")
    except ToolsUnavailable as error:
        missing_tool(str(error))
    assert (MANIFESTS / "operator.yaml").read_text() == operator_manifest(), (
        "manifests/operator.yaml is stale: run `python -m tests.operator.helm`"
    )


@pytest.mark.parametrize("name", ["crd.yaml", "operator.yaml"])
def test_manifests_are_valid_objects(name: str) -> None:
    for document in documents(name):
        kubernetes_validate.validate(document, "1.34.0", strict=True)


def test_operator_manifest_contents() -> None:
    objects = {obj["kind"]: obj for obj in documents("operator.yaml")}
    assert list(objects) == ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"]
    assert objects["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objects.values():
        labels = obj["metadata"].get("labels", {})
        assert "helm.sh/chart" not in labels and labels.get("app.kubernetes.io/managed-by") != "Helm"
    container = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:3] == ["operator", "--standalone", "--all-namespaces"]


def test_example_simulation() -> None:
    (example,) = documents("examples/simulation.yaml")
    assert (example["apiVersion"], example["kind"]) == (names.API_VERSION, names.KIND)
    spec = parse_resource(example["spec"])
    assert spec.workers == 4 and spec.simulation.simulation.dataset == "fashion_mnist"
    assert names.name_problem(example["metadata"]["name"]) is None
    for child in build_children(Simulation(example["metadata"]["name"], "default", spec, OperatorSettings()), "t", 4):
        kubernetes_validate.validate(child, "1.34.0", strict=True)
