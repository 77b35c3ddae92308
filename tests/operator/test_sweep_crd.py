"""The FelesSweep CRD (committed copies, structural, admission), its `.spec` parser, cells' FelesSimulations."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from feles.cli import app
from feles_operator.simulation import crd as simulation_crd
from feles_operator.simulation.resource import ResourceError, parse_resource
from feles_operator.sweep import crd, names
from feles_operator.sweep.builders import cell_simulation
from feles_operator.sweep.resource import parse_sweep_resource, sweep_cells
from tests.operator.schema_tools import admission_errors, structural_problems

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = [ROOT / "manifests" / "crd-sweep.yaml", ROOT / "charts" / "feles" / "crds" / f"{names.CRD_NAME}.yaml"]
EXAMPLE = yaml.safe_load((ROOT / "manifests" / "examples" / "sweep.yaml").read_text())


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return crd.custom_resource_definition()


def openapi(definition: dict[str, Any]) -> dict[str, Any]:
    return definition["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def sweep(spec: dict[str, Any], name: str = "grid") -> dict[str, Any]:
    return {"apiVersion": "feles.io/v1alpha1", "kind": names.KIND, "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize("path", COMMITTED, ids=lambda path: str(path.relative_to(ROOT)))
def test_committed_crd_is_the_generated_one(path: Path) -> None:
    assert path.read_text() == crd.crd_yaml(), f"{path} is stale: run `python -m tests.operator.helm`"


def test_crd_is_a_valid_structural_kubernetes_object(definition: dict[str, Any]) -> None:
    kubernetes_validate.validate(definition, "1.34.0", strict=True)
    assert yaml.safe_load(crd.crd_yaml()) == definition
    assert structural_problems(openapi(definition)) == []
    for name in ("crd-sweep.yaml", "examples/sweep.yaml"):
        for document in yaml.safe_load_all((ROOT / "manifests" / name).read_text()):
            if document.get("kind") == "CustomResourceDefinition":
                kubernetes_validate.validate(document, "1.34.0", strict=True)


def test_names_columns_and_immutable_base(definition: dict[str, Any]) -> None:
    spec = definition["spec"]
    assert definition["metadata"]["name"] == "felessweeps.feles.io"
    assert (spec["names"]["kind"], spec["names"]["shortNames"], spec["group"]) == ("FelesSweep", ["fsweep"], "feles.io")
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [column["name"] for column in version["additionalPrinterColumns"] if not column.get("priority")]
    assert columns == ["Phase", "Done/Total", "Running", "Best", "Age"]
    status = openapi(definition)["properties"]["status"]["properties"]
    for column in version["additionalPrinterColumns"]:
        if column["jsonPath"].startswith(".status."):
            assert column["jsonPath"].removeprefix(".status.").split(".")[0] in status, column
    properties = openapi(definition)["properties"]["spec"]["properties"]
    assert properties["base"]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    assert "x-kubernetes-validations" not in properties["axes"]  # the grid may change
    assert properties["axes"]["items"]["properties"]["values"]["items"] == {
        "x-kubernetes-preserve-unknown-fields": True
    }
    assert list(properties["template"]["properties"]) == ["workers", "image", "imagePullPolicy", "imagePullSecrets",
                                                          "orchestrator", "worker", "storage"]  # fmt: skip
    assert openapi(definition)["properties"]["spec"]["required"] == ["base"]


def test_example_passes_admission_and_expands_into_valid_simulations(definition: dict[str, Any]) -> None:
    assert admission_errors(definition, EXAMPLE) == []
    name = EXAMPLE["metadata"]["name"]
    spec = parse_sweep_resource(EXAMPLE["spec"])
    cells = sweep_cells(name, spec)
    assert len(cells) == 18 and spec.parallelism == 4
    owner = {**EXAMPLE, "metadata": {**EXAMPLE["metadata"], "namespace": "team-a", "uid": "u-1"}}
    simulations = simulation_crd.custom_resource_definition()
    for cell in cells:
        child = cell_simulation(owner, spec, cell)
        assert admission_errors(simulations, child) == [], cell.name
        assert len(child["metadata"]["name"]) <= 45 and child["metadata"]["namespace"] == "team-a"
        parsed = parse_resource(child["spec"])
        assert parsed.workers == 1 and parsed.simulation == cell.spec
    names_seen = [cell.name for cell in cells]
    assert names_seen[0] == "sel-random-alpha-0p1-seed-1" and len(set(names_seen)) == 18
    assert names_seen[-1] == "sel-loss-and-fairness-alpha-10-seed-3"  # the sweep's short name leaves room


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"parallelism": 0}, "spec.parallelism"),
        ({"best": {"metric": "f1"}}, "spec.best.metric"),
        ({"axes": [{"path": "a b", "values": [1]}]}, "spec.axes[0].path"),
        ({"axes": [{"path": "data.num", "values": [1], "name": "Alpha"}]}, "spec.axes[0].name"),
        ({"seeds": [-1]}, "spec.seeds[0]"),
        ({"base": {"devices": {"num": "many"}}}, "spec.base.devices.num"),
        ({"template": {"workers": -1}}, "spec.template.workers"),
    ],
)
def test_invalid_sweeps_are_rejected_at_admission_naming_the_field(
    definition: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    spec = {**copy.deepcopy(EXAMPLE["spec"]), **change}
    errors = admission_errors(definition, sweep(spec))
    path = field.replace("[", ".").replace("]", "")
    assert errors and all(error.startswith(path + ":") for error in errors), errors


def test_long_names_are_rejected(definition: dict[str, Any]) -> None:
    assert admission_errors(definition, sweep(EXAMPLE["spec"], "x" * 30)) == []
    assert admission_errors(definition, sweep(EXAMPLE["spec"], "x" * 31))[0].startswith("metadata.name:")


@pytest.mark.parametrize(
    ("spec", "name", "where"),
    [
        ({"base": {}, "template": {"workers": -1}}, "grid", "spec.template.workers"),
        ({"base": {}, "axes": [{"path": "data.non_iid_partitions"}]}, "grid", "spec.axes.0"),
        ({"base": {}, "extra": 1}, "grid", "spec.extra"),
        ({"base": {}, "axes": [{"path": "data.nope", "values": [1]}]}, "grid", "spec.axes[0].path"),
        (
            {"base": {}, "axes": [{"path": "simulation.stop_conds.metric", "values": [2], "name": "t"}]},
            "grid",
            "cell t-2: ",
        ),
        ({"base": {}}, "x" * 31, "metadata.name"),
    ],
)
def test_the_operator_names_each_problem(spec: dict[str, Any], name: str, where: str) -> None:
    with pytest.raises(ResourceError) as raised:
        sweep_cells(name, parse_sweep_resource(spec))
    assert raised.value.errors[0][0].startswith(where), raised.value.errors


def test_cell_names_leave_room_for_the_sweep_name() -> None:
    spec = parse_sweep_resource(EXAMPLE["spec"])
    for name in ("a", "x" * 30):
        assert all(len(f"{name}-{cell.name}") <= 45 for cell in sweep_cells(name, spec))


def test_feles_crd_prints_either_kind_or_both() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["crd", "--kind", "sweep"]).stdout == crd.crd_yaml()
    assert runner.invoke(app, ["crd"]).stdout == simulation_crd.crd_yaml()
    both = runner.invoke(app, ["crd", "--kind", "all"]).stdout
    assert both == simulation_crd.crd_yaml() + "---\n" + crd.crd_yaml()
    assert [document["spec"]["names"]["kind"] for document in yaml.safe_load_all(both)] == [
        "FelesSimulation",
        "FelesSweep",
    ]
    wrong = runner.invoke(app, ["crd", "--kind", "nope"])
    assert wrong.exit_code == 2 and "simulation, sweep, all" in wrong.output


def test_the_charts_notes_tell_how_to_run_a_sweep() -> None:
    from tests.operator.helm import notes
    from tests.operator.tools import ToolsUnavailable, missing_tool, tool

    try:
        tool("helm")
    except ToolsUnavailable as error:
        missing_tool(str(error))
    text = notes()
    assert "kubectl apply -f manifests/examples/sweep.yaml" in text and "kubectl get fsweep -w" in text
