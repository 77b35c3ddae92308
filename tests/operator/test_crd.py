"""The generated CRD: committed copies up to date, structural, as strict as SimulationSpec, admission works."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from feles.config import SimulationSpec
from feles_operator.simulation import crd, names
from tests.operator.schema_tools import admission_errors, structural_problems, to_json_schema, walk

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = [ROOT / "manifests" / "crd.yaml", ROOT / "charts" / "feles" / "crds" / f"{names.CRD_NAME}.yaml"]
REGENERATE = "feles crd > manifests/crd.yaml && cp manifests/crd.yaml charts/feles/crds/felessimulations.feles.io.yaml"


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return crd.custom_resource_definition()


def openapi(definition: dict[str, Any]) -> dict[str, Any]:
    return definition["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def resource(spec: dict[str, Any], name: str = "demo") -> dict[str, Any]:
    return {"apiVersion": names.API_VERSION, "kind": names.KIND, "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize("path", COMMITTED, ids=lambda path: str(path.relative_to(ROOT)))
def test_committed_crd_is_the_generated_one(path: Path) -> None:
    assert path.read_text() == crd.crd_yaml(), f"{path} is stale: run `{REGENERATE}`"


def test_crd_is_a_valid_kubernetes_object(definition: dict[str, Any]) -> None:
    kubernetes_validate.validate(definition, "1.34.0", strict=True)
    assert yaml.safe_load(crd.crd_yaml()) == definition


def test_schema_is_structural(definition: dict[str, Any]) -> None:
    assert structural_problems(openapi(definition)) == []
    assert "$ref" not in crd.crd_yaml() and "$defs" not in crd.crd_yaml()


def _pydantic_leaves(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each SimulationSpec leaf field with the constraints pydantic's JSON schema states for it."""
    definitions = schema["$defs"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            return {**definitions[node["$ref"].split("/")[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    leaves: dict[str, dict[str, Any]] = {}

    def visit(node: dict[str, Any], path: str) -> None:
        node = resolve(node)
        options = [resolve(option) for option in node.get("anyOf", []) if option.get("type") != "null"]
        if options:
            node = {**options[0], **{k: v for k, v in node.items() if k != "anyOf"}}
        if node.get("type") == "object" and "properties" in node:
            for key, child in node["properties"].items():
                visit(child, f"{path}.{key}")
            return
        keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "pattern", "minLength", "type")
        leaves[path] = {key: node[key] for key in keys if key in node}
        if "const" in node:
            leaves[path]["enum"] = [node["const"]]

    visit(schema, "")
    return leaves


def test_simulation_schema_enforces_what_pydantic_enforces(definition: dict[str, Any]) -> None:
    generated = dict(walk(openapi(definition)["properties"]["spec"]["properties"]["simulation"]))
    leaves = _pydantic_leaves(SimulationSpec.model_json_schema())
    assert len(leaves) > 40
    for path, expected in leaves.items():
        node = generated[path]
        assert node["type"] == expected["type"], path
        for key in ("enum", "pattern", "minLength"):
            assert node.get(key) == expected.get(key), (path, key)
        for bound, keyword in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if bound in expected:
                assert (node[keyword], node[bound]) == (expected[bound], True), (path, bound)
            else:
                assert node.get(keyword) == expected.get(keyword) and bound not in node, (path, keyword)


def test_simulation_is_immutable_and_maps_are_free_form(definition: dict[str, Any]) -> None:
    simulation = openapi(definition)["properties"]["spec"]["properties"]["simulation"]
    assert simulation["x-kubernetes-validations"] == [
        {
            "rule": "self == oldSelf",
            "message": "spec.simulation is immutable: create a new FelesSimulation to change it",
        }
    ]
    params = simulation["properties"]["algorithms"]["properties"]["algorithm_params"]
    assert params == {
        "description": "Parameters of the algorithm.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    num_examples = simulation["properties"]["algorithms"]["properties"]["fit"]["properties"]["params"]
    assert num_examples["properties"]["num_examples"] == {
        "description": "Local examples per job; null uses all of the device's data.",
        "type": "integer",
        "minimum": 1,
        "nullable": True,
    }


def test_names_subresources_and_columns(definition: dict[str, Any]) -> None:
    spec = definition["spec"]
    assert definition["metadata"]["name"] == "felessimulations.feles.io"
    assert (spec["group"], spec["scope"], spec["names"]["kind"]) == ("feles.io", "Namespaced", "FelesSimulation")
    assert spec["names"]["shortNames"] == ["fsim"] and spec["names"]["plural"] == "felessimulations"
    version = spec["versions"][0]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.workers",
            "statusReplicasPath": ".status.workersReady",
            "labelSelectorPath": ".status.selector",
        },
    }
    columns = [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == [
        ("Phase", ".status.phase"),
        ("Round", ".status.roundProgress"),
        ("Metric", ".status.metric"),
        ("Value", ".status.metricValue"),
        ("Loss", ".status.loss"),
        ("Workers", ".status.workersReady"),
        ("Age", ".metadata.creationTimestamp"),
    ]
    wide = {c["name"] for c in version["additionalPrinterColumns"] if c.get("priority") == 1}
    assert {"Repetition", "Simulated"} <= wide
    schema = openapi(definition)
    assert schema["properties"]["spec"]["properties"]["workers"]["default"] == 2
    assert schema["properties"]["spec"]["required"] == ["simulation"]
    status = schema["properties"]["status"]["properties"]
    for column in version["additionalPrinterColumns"]:
        if column["jsonPath"].startswith(".status."):
            assert column["jsonPath"].removeprefix(".status.") in status, column


def test_example_passes_admission(definition: dict[str, Any]) -> None:
    example = yaml.safe_load((ROOT / "manifests" / "examples" / "simulation.yaml").read_text())
    assert admission_errors(definition, example) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"simulation": {"algorithms": {"fit": {"params": {"k": 0}}}}}, "spec.simulation.algorithms.fit.params.k"),
        ({"simulation": {"algorithms": {"fit": {"params": {"k": 1.5}}}}}, "spec.simulation.algorithms.fit.params.k"),
        ({"simulation": {"algorithms": {"optimizer": "nadam"}}}, "spec.simulation.algorithms.optimizer"),
        ({"simulation": {"simulation": {"num_rounds": 0}}}, "spec.simulation.simulation.num_rounds"),
        ({"simulation": {"simulation": {"output_file": "a/b.json"}}}, "spec.simulation.simulation.output_file"),
        ({"simulation": {"devices": {"p_fail": 1}}}, "spec.simulation.devices.p_fail"),
        ({"simulation": {"devices": {"num": "many"}}}, "spec.simulation.devices.num"),
        ({"workers": -1}, "spec.workers"),
        ({"imagePullPolicy": "Sometimes"}, "spec.imagePullPolicy"),
        ({"worker": {"resources": {"limits": {"cpu": "two"}}}}, "spec.worker.resources.limits.cpu"),
        ({"storage": {"results": {"size": "lots"}}}, "spec.storage.results.size"),
    ],
)
def test_invalid_specs_are_rejected_at_admission_naming_the_field(
    definition: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    spec = {"simulation": {"simulation": {"dataset": "digits"}}, "workers": 2}
    for key, value in change.items():
        merged = copy.deepcopy(spec.get(key))
        spec[key] = _merge(merged, value) if isinstance(value, dict) and isinstance(merged, dict) else value
    errors = admission_errors(definition, resource(spec))
    assert errors and all(error.startswith(field + ":") for error in errors), errors


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    for key, value in override.items():
        base[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return base


def test_long_or_dotted_names_are_rejected(definition: dict[str, Any]) -> None:
    spec = {"simulation": {}}
    assert admission_errors(definition, resource(spec, "x" * 45)) == []
    assert admission_errors(definition, resource(spec, "x" * 46))[0].startswith("metadata.name:")
    assert admission_errors(definition, resource(spec, "a.b"))[0].startswith("metadata.name:")


def test_nullable_only_where_null_means_something() -> None:
    schema = crd.spec_schema()
    outer = {path for path, node in walk(schema) if node.get("nullable") and not path.startswith(".simulation")}
    assert outer == set()
    json_schema = to_json_schema(schema)
    assert json_schema["properties"]["simulation"]["properties"]["simulation"]["properties"]["model"]["type"] == [
        "string",
        "null",
    ]
