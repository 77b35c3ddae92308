"""Bad input is refused fast, with the field named and without echoing the input (issue 12.7, 12.8, 12.9)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from feles.config import BUILTIN_NAMES, MEMORY_BUDGET_BYTES, SpecError, load_spec, parse_spec

# --- 12.7: alias bombs, non-finite floats, sizes beyond memory ----------------------------------------------------

#: A "billion laughs" document of about 1 KB: nine levels of nine aliases each.
ALIAS_BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
    + "devices: {num: *i}\n"
)


@pytest.mark.timeout(20)
def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 2048
    started = time.monotonic()
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert time.monotonic() - started < 2.0
    [(field, message)] = info.value.errors
    assert field == "<yaml>" and "aliases (*a) are not allowed" in message and "line 2" in message


def test_a_bad_value_is_not_echoed_whole() -> None:
    huge = "x" * 100_000
    with pytest.raises(SpecError) as info:
        parse_spec({"simulation": {"num_rounds": huge}, "devices": {"num": list(range(10_000))}})
    assert len(str(info.value)) < 1000
    errors = dict(info.value.errors)
    assert "100002 characters" in errors["simulation.num_rounds"]
    assert "a list of 10000 items" in errors["devices.num"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"computation": {"ips_mean": float("inf")}}, "computation.ips_mean"),
        ({"network": {"speed_mean": float("nan")}}, "network.speed_mean"),
        ({"energy": {"avail_mean": float("inf"), "avail_var": 0}}, "energy.avail_mean"),
        ({"simulation": {"stop_conds": {"loss": float("nan")}}}, "simulation.stop_conds.loss"),
    ],
)
def test_infinite_or_nan_floats_are_refused_naming_the_field(document: dict, field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(document)
    assert field in dict(info.value.errors)


def test_infinite_floats_in_a_yaml_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "inf.yaml"
    path.write_text("computation: {ips_mean: .inf}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "computation.ips_mean" in dict(info.value.errors)


def test_a_local_data_size_beyond_memory_is_refused_naming_the_field() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"data": {"num_examples_mean": 1e15}})
    errors = dict(info.value.errors)
    assert "must be at most 10000000 local examples" in errors["data.num_examples_mean"]


def test_devices_beyond_memory_are_refused_with_the_estimate() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"devices": {"num": 10_000_000}, "data": {"num_examples_mean": 1000}})
    errors = dict(info.value.errors)
    assert "GiB of device data" in errors["data.num_examples_mean"]
    assert f"{MEMORY_BUDGET_BYTES / 1024**3:.0f} GiB" in errors["data.num_examples_mean"]
    parse_spec({"devices": {"num": 1_000_000}, "data": {"num_examples_mean": 100}})  # 1.5 GiB: fine


# --- 12.8: unknown built-in names fail in the schema (so in validate and at admission) ------------------------------


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"simulation": {"dataset": "mnistt"}}, "simulation.dataset"),
        ({"simulation": {"model": "resnet"}}, "simulation.model"),
        ({"simulation": {"initializer": "orthogonal"}}, "simulation.initializer"),
        ({"algorithms": {"federated_algorithm": "fedsgd"}}, "algorithms.federated_algorithm"),
        ({"algorithms": {"fit": {"selection": "fastest"}}}, "algorithms.fit.selection"),
        ({"algorithms": {"eval": {"update": "dynamic"}}}, "algorithms.eval.update"),
        ({"algorithms": {"fit": {"data": "sorted"}}}, "algorithms.fit.data"),
        ({"algorithms": {"fit": {"aggregation": "median"}}}, "algorithms.fit.aggregation"),
    ],
)
def test_unknown_builtin_names_are_refused_by_the_schema(document: dict, field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(document)
    assert "unknown" in dict(info.value.errors)[field]


def test_import_paths_pass_the_schema_check() -> None:
    parse_spec({"algorithms": {"fit": {"selection": "my_selectors:SlowestFirst"}}})


def test_the_builtin_names_of_config_are_the_registries() -> None:
    from feles.algorithms import AGGREGATIONS, ALGORITHMS
    from feles.data import DATASETS
    from feles.models import INITIALIZERS, MODELS
    from feles.strategies import LOCAL_DATA_OPTIMIZERS, SELECTORS, UPDATE_OPTIMIZERS

    registries = {
        "dataset": DATASETS,
        "model": MODELS,
        "initializer": INITIALIZERS,
        "federated_algorithm": ALGORITHMS,
        "aggregation": AGGREGATIONS,
        "selection": SELECTORS,
        "update": UPDATE_OPTIMIZERS,
        "data": LOCAL_DATA_OPTIMIZERS,
    }
    assert {kind: set(registry.names()) for kind, registry in registries.items()} == {
        kind: set(names) for kind, names in BUILTIN_NAMES.items()
    }


def test_the_operator_refuses_unknown_names_at_admission() -> None:
    from feles_operator.simulation.resource import ResourceError, parse_resource

    with pytest.raises(ResourceError) as info:
        parse_resource({"simulation": {"simulation": {"dataset": "mnistt", "model": "resnet"}}, "workers": 1})
    fields = [path for path, _ in info.value.errors]
    assert "spec.simulation.simulation.dataset" in fields and "spec.simulation.simulation.model" in fields


# --- 12.9: clear errors, never a traceback ----------------------------------------------------------------------


def _feles(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feles", *arguments], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_a_yaml_syntax_error_shows_file_line_column_and_the_parsers_message(tmp_path: Path) -> None:
    path = tmp_path / "spec[dim].yaml"  # rich markup used to eat "[dim]" and the newlines were merged
    path.write_text("devices: {num: 3\nsimulation: [a]\n")
    with path.open() as stream, pytest.raises(yaml.YAMLError) as parsed:
        yaml.safe_load(stream)
    result = _feles("validate", str(path), cwd=tmp_path)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert str(path) in output and "line 2, column 11" in output
    for line in str(parsed.value).splitlines():  # the parser's message, line by line, intact
        assert line in output, line


def test_an_empty_spec_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    result = _feles("validate", str(path), cwd=tmp_path)
    assert result.returncode == 1 and "the file is empty" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["file", "unwritable"])
def test_an_output_folder_that_cannot_hold_results_is_a_message(tmp_path: Path, kind: str) -> None:
    output = tmp_path / "out"
    if kind == "file":
        output.write_text("a file")
    else:
        # sysfs takes no new folder, from anyone: a mode would not stop root, who runs CI.
        output = Path("/sys/feles-test/out")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"simulation": {"dataset": "digits", "output_folder": str(output)}}))
    for arguments in (["orchestrator", "--config", str(spec), "--insecure", "--port", "0"], ["run", str(spec)]):
        result = _feles(*arguments, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        assert "cannot hold the results" in result.stderr
        assert "results so far" not in result.stderr


def test_a_checkpoint_with_missing_keys_is_a_message(tmp_path: Path) -> None:
    import json

    import torch

    from feles.orchestrator.checkpoint import METADATA_KEY, checkpoint_path
    from feles.protocol import encode_tensors

    output = tmp_path / "out"
    output.mkdir()
    checkpoint_path(output).write_bytes(
        encode_tensors({"model/w": torch.zeros(1)}, {METADATA_KEY: json.dumps({"format": 1, "run_id": "x"})})
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"simulation": {"dataset": "digits", "output_folder": str(output)}}))
    result = _feles("orchestrator", "--config", str(spec), "--insecure", "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert "not a readable FELES checkpoint" in result.stderr and "spec" in result.stderr
