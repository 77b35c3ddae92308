"""feles.config: the SimulationSpec schema, its error messages, `import:` chains and `feles validate`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from feles.cli import app
from feles.config import (
    SimulationSpec,
    SpecError,
    cross_field_errors,
    deep_merge,
    load_spec,
    parse_spec,
    spec_to_yaml,
)

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart.yaml"


def spec_errors(document: Any) -> dict[str, str]:
    """The SpecError of `document` as {field path: message}; fails if the document is valid."""
    with pytest.raises(SpecError) as info:
        parse_spec(document)
    paths = [path for path, _ in info.value.errors]
    assert len(paths) == len(set(paths)), f"an error is listed twice: {paths}"
    return dict(info.value.errors)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults ---------------------------------------------------------------------------------------


def test_defaults_are_a_valid_spec() -> None:
    spec = SimulationSpec()
    assert cross_field_errors(spec) == []
    assert spec.devices.num == 100
    assert spec.devices.p_available == 0.8
    assert spec.devices.p_fail == 0.1
    assert spec.algorithms.federated_algorithm == "fedavg"
    assert spec.algorithms.fit.params.k == 0.1
    assert spec.algorithms.fit.params.num_examples is None
    assert spec.simulation.stop_conds.metric is None
    assert spec.simulation.seed == 0


@pytest.mark.parametrize("document", [None, {}])
def test_empty_document_gives_the_defaults(document: Any) -> None:
    assert parse_spec(document) == SimulationSpec()


def test_values_are_read_into_their_sections() -> None:
    spec = parse_spec(
        {
            "simulation": {"num_rounds": 3, "seed": 7, "stop_conds": {"metric": 0.9}},
            "algorithms": {
                "fit": {"params": {"k": 0.5, "epochs": 2, "num_examples": 40}},
                "eval": {"params": {"k": 0.25}},
            },
            "devices": {"num": 4},
        }
    )
    assert spec.simulation.num_rounds == 3
    assert spec.simulation.seed == 7
    assert spec.simulation.stop_conds.metric == 0.9
    assert spec.algorithms.fit.params.k == 0.5
    assert spec.algorithms.fit.params.epochs == 2
    assert spec.algorithms.fit.params.num_examples == 40
    # Untouched siblings keep their defaults.
    assert spec.algorithms.fit.params.batch_size == 32
    assert spec.algorithms.eval.params.k == 0.25
    assert spec.algorithms.eval.params.epochs == 1


def test_quickstart_example_is_valid() -> None:
    spec = load_spec(QUICKSTART)
    assert cross_field_errors(spec) == []
    # The file is read, not ignored: it sets values that differ from the defaults.
    assert spec != SimulationSpec()
    assert spec.simulation.seed == yaml.safe_load(QUICKSTART.read_text())["simulation"]["seed"]


# --- field errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"devices": {"bogus": 1}}, "devices.bogus"),
        ({"bogus_section": {}}, "bogus_section"),
        ({"algorithms": {"fit": {"params": {"kk": 0.1}}}}, "algorithms.fit.params.kk"),
        ({"simulation": {"stop_conds": {"accuracy": 0.9}}}, "simulation.stop_conds.accuracy"),
    ],
)
def test_unknown_key_is_an_error_with_its_dotted_path(document: dict[str, Any], path: str) -> None:
    assert spec_errors(document) == {path: "unknown key"}


def test_unknown_key_message_format() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"devices": {"bogus": 1}}, source="sim.yaml")
    assert "devices.bogus: unknown key" in str(info.value)
    assert str(info.value).startswith("sim.yaml: 1 error(s)")
    assert info.value.source == "sim.yaml"


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        ({"devices": {"p_fail": 2}}, "devices.p_fail", "less than 1"),
        ({"devices": {"p_fail": -0.1}}, "devices.p_fail", "greater than or equal to 0"),
        ({"devices": {"p_available": 0}}, "devices.p_available", "greater than 0"),
        ({"devices": {"num": 0}}, "devices.num", "greater than or equal to 1"),
        ({"algorithms": {"fit": {"params": {"k": 0}}}}, "algorithms.fit.params.k", "greater than 0"),
        ({"algorithms": {"eval": {"params": {"k": 1.5}}}}, "algorithms.eval.params.k", "less than or equal to 1"),
        ({"algorithms": {"fit": {"params": {"epochs": 0}}}}, "algorithms.fit.params.epochs", "greater than"),
        ({"data": {"mislabelling_percentage": 1}}, "data.mislabelling_percentage", "less than 1"),
        ({"simulation": {"stop_conds": {"metric": 1.5}}}, "simulation.stop_conds.metric", "at most 1"),
        ({"simulation": {"num_rounds": 0}}, "simulation.num_rounds", "greater than or equal to 1"),
        ({"simulation": {"output_file": "out/results.json"}}, "simulation.output_file", "pattern"),
        ({"simulation": {"output_file": "results.csv"}}, "simulation.output_file", "pattern"),
        ({"simulation": {"metric": "f1"}}, "simulation.metric", "'accuracy'"),
        ({"algorithms": {"optimizer": "nadam"}}, "algorithms.optimizer", "'sgd', 'adam', 'rmsprop' or 'adagrad'"),
        ({"devices": {"num": "many"}}, "devices.num", "valid integer"),
        ({"computation": {"ips_mean": 0}}, "computation.ips_mean", "greater than 0"),
    ],
)
def test_out_of_range_value_names_the_field(document: dict[str, Any], path: str, words: str) -> None:
    errors = spec_errors(document)
    assert list(errors) == [path]
    assert words in errors[path]


def test_out_of_range_message_shows_the_value_given() -> None:
    errors = spec_errors({"devices": {"p_fail": 2}})
    assert errors["devices.p_fail"] == "Input should be less than 1 (got 2)"


def test_section_that_is_not_a_mapping_names_the_section() -> None:
    errors = spec_errors({"devices": [1, 2]})
    assert list(errors) == ["devices"]


@pytest.mark.parametrize("document", [[1, 2], "text", 3])
def test_document_that_is_not_a_mapping(document: Any) -> None:
    errors = spec_errors(document)
    assert list(errors) == ["<root>"]
    assert f"must be a mapping, got {type(document).__name__}" == errors["<root>"]


def test_assignment_is_validated() -> None:
    spec = SimulationSpec()
    with pytest.raises(ValidationError):
        spec.devices.p_fail = 2
    assert spec.devices.p_fail == 0.1


@pytest.mark.parametrize(
    ("document", "path", "value"),
    [
        ({"simulation": {"num_rounds": True}}, "simulation.num_rounds", True),
        ({"simulation": {"seed": False}}, "simulation.seed", False),
        ({"devices": {"num": True}}, "devices.num", True),
        ({"devices": {"p_fail": False}}, "devices.p_fail", False),
        ({"computation": {"ips_mean": True}}, "computation.ips_mean", True),
        ({"algorithms": {"learning_rate": True}}, "algorithms.learning_rate", True),
        ({"algorithms": {"fit": {"params": {"num_examples": True}}}}, "algorithms.fit.params.num_examples", True),
        ({"simulation": {"stop_conds": {"loss": False}}}, "simulation.stop_conds.loss", False),
    ],
)
def test_a_boolean_is_not_a_number(document: dict[str, Any], path: str, value: bool) -> None:
    # pydantic's lax mode would read true as 1 (one device) and false as 0.
    assert spec_errors(document) == {path: f"Input should be a number, not a boolean (got {value})"}


@pytest.mark.parametrize(
    ("document", "path", "value"),
    [
        ({"simulation": {"identical_repetitions": "no"}}, "simulation.identical_repetitions", "'no'"),
        ({"simulation": {"identical_repetitions": "true"}}, "simulation.identical_repetitions", "'true'"),
        ({"devices": {"energy_failures": 0}}, "devices.energy_failures", "0"),
        ({"devices": {"energy_failures": "off"}}, "devices.energy_failures", "'off'"),
    ],
)
def test_only_true_or_false_is_a_boolean(document: dict[str, Any], path: str, value: str) -> None:
    assert spec_errors(document) == {path: f"Input should be a valid boolean (got {value})"}


def test_numbers_stay_lax_where_nothing_is_lost(tmp_path: Path) -> None:
    # An int where a float is expected, a whole float where an int is, and YAML 1.1's `1e5` (a string to it).
    path = write(
        tmp_path / "sim.yaml",
        "simulation: {num_rounds: 2.0, metric: mae, dataset: diabetes}\n"
        "network: {speed_mean: 1e5, speed_var: 0}\n"
        "computation: {ips_mean: 100}\n"
        "devices: {energy_failures: false}\n",
    )
    spec = load_spec(path)
    assert spec.simulation.num_rounds == 2 and isinstance(spec.simulation.num_rounds, int)
    assert spec.network.speed_mean == 100_000.0
    assert spec.computation.ips_mean == 100.0 and isinstance(spec.computation.ips_mean, float)
    assert spec.simulation.metric == "mae"
    assert spec.devices.energy_failures is False


def test_cli_validate_refuses_booleans_for_numbers_and_strings_for_booleans(tmp_path: Path) -> None:
    path = write(
        tmp_path / "types.yaml",
        'simulation: {dataset: digits, num_rounds: true, seed: false, identical_repetitions: "no"}\n'
        "devices: {num: true}\n",
    )
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "4 error(s)" in result.output
    assert "simulation.num_rounds: Input should be a number, not a boolean (got True)" in result.output
    assert "simulation.seed: Input should be a number, not a boolean (got False)" in result.output
    assert "simulation.identical_repetitions: Input should be a valid boolean (got 'no')" in result.output
    assert "devices.num: Input should be a number, not a boolean (got True)" in result.output
    assert "valid (" not in result.output


# --- cross-field rules ------------------------------------------------------------------------------


def test_k_below_one_device_is_accepted() -> None:
    # k is a fraction of the devices available in each round, and a round selects at least one of them.
    spec = parse_spec({"devices": {"num": 50}, "algorithms": {"fit": {"params": {"k": 0.01}}}})
    assert spec.algorithms.fit.params.k == 0.01


def test_eval_epochs_other_than_one_is_an_error() -> None:
    errors = spec_errors({"algorithms": {"eval": {"params": {"epochs": 2}}}})
    assert errors == {
        "algorithms.eval.params.epochs": "evaluation is one pass over the device's data: must be 1 (got 2)"
    }


@pytest.mark.parametrize("name", ["fednova", "fedavg", "median", "pkg.mod:Aggregation"])
def test_an_eval_aggregation_is_an_error(name: str) -> None:
    # Only the fit phase aggregates models: an eval aggregation would be ignored, whatever it names.
    errors = spec_errors({"algorithms": {"eval": {"aggregation": name}}})
    assert errors == {
        "algorithms.eval.aggregation": "the eval phase aggregates no model (only the fit phase does): remove it or "
        f"set algorithms.fit.aggregation (got {name!r})"
    }


def test_a_fit_aggregation_and_a_null_eval_aggregation_are_valid() -> None:
    spec = parse_spec({"algorithms": {"fit": {"aggregation": "fednova"}, "eval": {"aggregation": None}}})
    assert (spec.algorithms.fit.aggregation, spec.algorithms.eval.aggregation) == ("fednova", None)
    assert parse_spec({"algorithms": {"fit": {"params": {"epochs": 5}}}}).algorithms.fit.params.epochs == 5


def test_default_k_on_a_small_population_is_valid() -> None:
    assert parse_spec({"devices": {"num": 5}}).devices.num == 5


@pytest.mark.parametrize(
    ("section", "var_key", "mean_key", "mean", "strict"),
    [
        ("computation", "ips_var", "ips_mean", 100, True),
        ("network", "speed_var", "speed_mean", 100_000, True),
        ("data", "num_examples_var", "num_examples_mean", 600, True),
        ("energy", "avail_var", "avail_mean", 25_000, False),
    ],
)
def test_var_must_stay_below_mean(section: str, var_key: str, mean_key: str, mean: int, strict: bool) -> None:
    path = f"{section}.{var_key}"
    errors = spec_errors({section: {var_key: mean + 1}})
    assert list(errors) == [path]
    assert f"{section}.{mean_key} ({mean})" in errors[path]
    equal = {section: {var_key: mean}}
    if strict:
        assert list(spec_errors(equal)) == [path]
    else:
        assert getattr(getattr(parse_spec(equal), section), var_key) == mean
    assert getattr(getattr(parse_spec({section: {var_key: mean - 1}}), section), var_key) == mean - 1


def test_avail_var_may_equal_avail_mean_as_energy_draws_only_need_to_be_non_negative() -> None:
    # The draw is Uniform[mean - var, mean + var]: with var == mean its lowest value is 0, a device that can
    # afford nothing this round, which the energy model handles; a speed or a data size of 0 it could not.
    assert parse_spec({"energy": {"avail_mean": 100, "avail_var": 100}}).energy.avail_var == 100
    errors = spec_errors({"energy": {"avail_mean": 100, "avail_var": 101}})
    assert errors == {
        "energy.avail_var": "must be at most energy.avail_mean (100.0) so that every draw is non-negative"
    }


def test_ips_var_equal_to_mean_names_ips_var() -> None:
    errors = spec_errors({"computation": {"ips_mean": 10, "ips_var": 10}})
    assert errors == {
        "computation.ips_var": "must be smaller than computation.ips_mean (10.0) so that every draw is positive"
    }


# --- several errors at once -------------------------------------------------------------------------


def test_spec_error_lists_every_field_error() -> None:
    document = {
        "devices": {"bogus": 1, "p_fail": 2},
        "algorithms": {"fit": {"params": {"k": 0}}, "learning_rate": 0},
        "data": {"mislabelling_percentage": 1},
    }
    with pytest.raises(SpecError) as info:
        parse_spec(document, source="bad.yaml")
    paths = {path for path, _ in info.value.errors}
    assert paths == {
        "devices.bogus",
        "devices.p_fail",
        "algorithms.fit.params.k",
        "algorithms.learning_rate",
        "data.mislabelling_percentage",
    }
    text = str(info.value)
    assert text.startswith("bad.yaml: 5 error(s)\n")
    for path in paths:
        assert f"\n  {path}: " in text


def test_spec_error_lists_every_cross_field_error() -> None:
    document = {
        "computation": {"ips_mean": 10, "ips_var": 20},
        "network": {"speed_mean": 10, "speed_var": 10},
        "energy": {"avail_mean": 10, "avail_var": 11},
    }
    errors = spec_errors(document)
    assert set(errors) == {"computation.ips_var", "network.speed_var", "energy.avail_var"}


# --- load_spec and import: --------------------------------------------------------------------------


def test_load_spec_reads_yaml(tmp_path: Path) -> None:
    path = write(tmp_path / "sim.yaml", "devices:\n  num: 20\n  p_fail: 0.25\n")
    spec = load_spec(path)
    assert spec.devices.num == 20
    assert spec.devices.p_fail == 0.25


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_load_spec_of_an_empty_file_is_an_error_not_a_default_run(tmp_path: Path, text: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path / "empty.yaml", text))
    assert info.value.errors == [("<file>", "the file is empty (or only comments): a spec needs at least one key")]


def test_load_spec_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "sim.yaml", "devices: {p_fail: 2}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}: 1 error(s)")
    assert [p for p, _ in info.value.errors] == ["devices.p_fail"]


def test_import_relative_to_the_importing_file(tmp_path: Path) -> None:
    write(tmp_path / "base" / "common.yaml", "devices: {num: 40, p_fail: 0.3}\nsimulation: {seed: 5}\n")
    path = write(tmp_path / "sims" / "sim.yaml", "import: ../base/common.yaml\ndevices: {num: 60}\n")
    spec = load_spec(path)
    assert spec.devices.num == 60  # the importing file wins
    assert spec.devices.p_fail == 0.3  # deep merge keeps the imported sibling
    assert spec.simulation.seed == 5


def test_import_is_relative_to_the_file_not_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "conf" / "base.yaml", "devices: {num: 30}\n")
    path = write(tmp_path / "conf" / "sim.yaml", "import: base.yaml\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_spec(path).devices.num == 30


def test_nested_imports_resolve_relative_to_each_file(tmp_path: Path) -> None:
    write(tmp_path / "a" / "b" / "deep.yaml", "devices: {num: 10, p_fail: 0.5}\nsimulation: {seed: 1}\n")
    write(tmp_path / "a" / "mid.yaml", "import: b/deep.yaml\ndevices: {num: 20}\nsimulation: {num_rounds: 4}\n")
    path = write(tmp_path / "top.yaml", "import: a/mid.yaml\nsimulation: {seed: 9}\n")
    spec = load_spec(path)
    assert spec.devices.num == 20
    assert spec.devices.p_fail == 0.5
    assert spec.simulation.seed == 9
    assert spec.simulation.num_rounds == 4


def test_list_of_imports_later_ones_win(tmp_path: Path) -> None:
    write(tmp_path / "one.yaml", "devices: {num: 10, p_fail: 0.2}\nsimulation: {seed: 1, num_rounds: 7}\n")
    write(tmp_path / "two.yaml", "devices: {num: 30}\nsimulation: {seed: 2}\n")
    path = write(tmp_path / "sim.yaml", "import: [one.yaml, two.yaml]\nsimulation: {seed: 3}\n")
    spec = load_spec(path)
    assert spec.devices.num == 30
    assert spec.devices.p_fail == 0.2
    assert spec.simulation.num_rounds == 7
    assert spec.simulation.seed == 3


def test_deep_merge_replaces_non_mapping_values() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"z": 1}}
    override = {"a": {"y": [3]}, "b": {"now": "a mapping"}, "c": 5}
    merged = deep_merge(base, override)
    assert merged == {"a": {"x": 1, "y": [3]}, "b": {"now": "a mapping"}, "c": 5}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"z": 1}}  # inputs untouched


def test_imported_dict_parameters_merge_key_by_key(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", "simulation: {dataset_params: {alpha: 1, beta: 2}}\n")
    path = write(tmp_path / "sim.yaml", "import: base.yaml\nsimulation: {dataset_params: {beta: 5}}\n")
    assert load_spec(path).simulation.dataset_params == {"alpha": 1, "beta": 5}


def test_diamond_imports_are_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path / "root.yaml", "devices: {num: 10}\n")
    write(tmp_path / "left.yaml", "import: root.yaml\ndevices: {p_fail: 0.2}\n")
    write(tmp_path / "right.yaml", "import: root.yaml\ndevices: {p_available: 0.5}\n")
    spec = load_spec(write(tmp_path / "sim.yaml", "import: [left.yaml, right.yaml]\n"))
    assert (spec.devices.num, spec.devices.p_fail, spec.devices.p_available) == (10, 0.2, 0.5)


def test_import_cycle_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "import: b.yaml\n")
    write(tmp_path / "b.yaml", "import: a.yaml\n")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "a.yaml")
    [(path, message)] = info.value.errors
    assert path == "import"
    assert message.startswith("import cycle: ")
    assert "a.yaml" in message
    assert "b.yaml" in message


def test_self_import_is_a_cycle(tmp_path: Path) -> None:
    path = write(tmp_path / "self.yaml", "import: self.yaml\n")
    with pytest.raises(SpecError, match="import cycle"):
        load_spec(path)


def test_missing_imported_file_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "sim.yaml", "import: nowhere.yaml\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "nowhere.yaml" in str(info.value)
    [(field, message)] = info.value.errors
    assert field == "<file>"
    assert message.startswith("cannot read")


def test_missing_top_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "absent.yaml")
    assert "absent.yaml" in str(info.value)
    assert [f for f, _ in info.value.errors] == ["<file>"]


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.yaml", "devices: {num: 3\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    [(field, message)] = info.value.errors
    assert field == "<yaml>"
    # The parser's own message, its lines kept, after the line and column it points at.
    assert message.startswith("line 2, column 1: YAML syntax error\n")
    assert "while parsing a flow mapping" in message and "expected ',' or '}', but got '<stream end>'" in message
    assert "broken.yaml" in str(info.value)


def test_yaml_syntax_error_in_an_imported_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", "devices: [unclosed\n")
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path / "sim.yaml", "import: base.yaml\n"))
    assert info.value.source.endswith("base.yaml")
    assert [f for f, _ in info.value.errors] == ["<yaml>"]


@pytest.mark.parametrize(("text", "kind"), [("- 1\n- 2\n", "list"), ("just text\n", "str"), ("42\n", "int")])
def test_non_mapping_document(tmp_path: Path, text: str, kind: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path / "sim.yaml", text))
    assert info.value.errors == [("<root>", f"must be a mapping, got {kind}")]


def test_non_mapping_imported_document(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", "- a\n")
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path / "sim.yaml", "import: base.yaml\n"))
    assert info.value.errors == [("<root>", "must be a mapping, got list")]
    assert info.value.source.endswith("base.yaml")


@pytest.mark.parametrize("value", ["42", "{a: b}", "[a.yaml, 3]"])
def test_import_of_the_wrong_type(tmp_path: Path, value: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path / "sim.yaml", f"import: {value}\n"))
    assert info.value.errors == [("import", "must be a file name or a list of file names")]


def test_errors_after_merging_name_the_merged_field(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", "network: {speed_mean: 100}\n")
    path = write(tmp_path / "sim.yaml", "import: base.yaml\nnetwork: {speed_var: 100}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert {f for f, _ in info.value.errors} == {"network.speed_var"}


def test_an_error_at_a_key_an_imported_file_set_names_that_file(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", "simulation: {num_rouns: 3}\n")
    path = write(tmp_path / "child.yaml", "import: base.yaml\nsimulation: {dataset: digits, seedd: 1}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.source == str(path)
    assert info.value.errors == [
        (f"simulation.num_rouns (from {base})", "unknown key"),
        ("simulation.seedd", "unknown key"),  # in the file named first: no file named again
    ]


def test_a_cross_field_error_names_the_imported_file_of_its_field(tmp_path: Path) -> None:
    base = write(tmp_path / "conf" / "base.yaml", "energy: {avail_var: 300}\n")
    write(tmp_path / "conf" / "mid.yaml", "import: base.yaml\nsimulation: {seed: 2}\n")
    path = write(tmp_path / "top.yaml", "import: conf/mid.yaml\nenergy: {avail_mean: 100}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.errors == [
        (
            f"energy.avail_var (from {base})",
            "must be at most energy.avail_mean (100.0) so that every draw is non-negative",
        )
    ]


def test_a_key_the_importing_file_overrides_is_its_own(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", "devices: {p_fail: 0.5}\n")
    path = write(tmp_path / "sim.yaml", "import: base.yaml\ndevices: {p_fail: 2}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert [where for where, _ in info.value.errors] == ["devices.p_fail"]


def test_cli_validate_names_the_imported_file_of_an_unknown_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "base.yaml", "simulation:\n  num_rouns: 3\n")
    write(tmp_path / "child.yaml", "import: base.yaml\nsimulation:\n  dataset: digits\n")
    result = CliRunner().invoke(app, ["validate", "child.yaml"])
    assert result.exit_code == 1
    assert "invalid spec child.yaml: 1 error(s)\n  simulation.num_rouns (from base.yaml): unknown key" in result.output


# --- duplicate keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "second", "first"),
    [
        ("simulation:\n  dataset: digits\nsimulation:\n  num_rounds: 2\n", "simulation", 3, 1),
        ("simulation:\n  seed: 1\n  num_rounds: 2\n  seed: 2\n", "simulation.seed", 4, 2),
        ("devices: {num: 3, num: 4}\n", "devices.num", 1, 1),
        (
            "simulation:\n  stop_conds:\n    loss: 0.1\n    target: eval\n    loss: 0.2\n",
            "simulation.stop_conds.loss",
            5,
            3,
        ),
        ("simulation:\n  dataset_params:\n    alpha: 1\n    alpha: 2\n", "simulation.dataset_params.alpha", 4, 3),
        ("import: a.yaml\nimport: b.yaml\n", "import", 2, 1),
    ],
)
def test_a_duplicate_key_is_an_error_naming_it_and_its_lines(
    tmp_path: Path, text: str, path: str, second: int, first: int
) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path / "dup.yaml", text))
    message = f"duplicate key on line {second} (first on line {first}): only the last would count; write it once"
    assert info.value.errors == [(path, message)]


def test_keys_that_differ_in_type_are_not_duplicates(tmp_path: Path) -> None:
    path = write(tmp_path / "sim.yaml", "simulation:\n  dataset_params: {table: {1: a, '1': b}}\n")
    assert load_spec(path).simulation.dataset_params == {"table": {1: "a", "1": "b"}}


def test_a_duplicate_key_in_an_imported_file_names_that_file(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", "devices:\n  num: 3\ndevices:\n  p_fail: 0.2\n")
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path / "sim.yaml", "import: base.yaml\n"))
    assert info.value.source == str(base)
    assert [where for where, _ in info.value.errors] == ["devices"]


def test_a_duplicate_key_in_a_sweep_file_is_an_error(tmp_path: Path) -> None:
    from feles.sweep import load_sweep

    path = write(tmp_path / "sweep.yaml", "base:\n  simulation: {dataset: digits}\naxes: []\nbase: {}\n")
    with pytest.raises(SpecError) as info:
        load_sweep(path)
    assert info.value.errors == [
        ("base", "duplicate key on line 4 (first on line 1): only the last would count; write it once")
    ]


def test_cli_validate_refuses_a_duplicate_key(tmp_path: Path) -> None:
    path = write(tmp_path / "dupkey.yaml", "simulation:\n  dataset: digits\nsimulation:\n  num_rounds: 2\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "simulation: duplicate key on line 3 (first on line 1)" in result.output
    assert "valid (" not in result.output


# --- spec_to_yaml -----------------------------------------------------------------------------------


def test_spec_to_yaml_round_trip() -> None:
    spec = parse_spec(
        {
            "simulation": {"seed": 3, "stop_conds": {"loss": 0.2}, "dataset_params": {"alpha": 0.5}},
            "algorithms": {"fit": {"params": {"k": 0.3, "num_examples": 12}}, "optimizer": "adam"},
            "devices": {"num": 10, "p_fail": 0.0},
        }
    )
    text = spec_to_yaml(spec)
    assert parse_spec(yaml.safe_load(text)) == spec


def test_spec_to_yaml_is_explicit_and_ordered() -> None:
    document = yaml.safe_load(spec_to_yaml(SimulationSpec()))
    assert list(document) == ["simulation", "algorithms", "devices", "computation", "energy", "network", "data"]
    assert document["simulation"]["stop_conds"] == {"metric": None, "loss": None, "target": "test"}
    assert document["algorithms"]["fit"]["params"]["num_examples"] is None
    assert document["devices"] == {"num": 100, "p_available": 0.8, "p_fail": 0.1, "energy_failures": True}


def test_spec_to_yaml_file_loads_back(tmp_path: Path) -> None:
    spec = load_spec(QUICKSTART)
    path = write(tmp_path / "copy.yaml", spec_to_yaml(spec))
    assert load_spec(path) == spec


# --- feles validate ---------------------------------------------------------------------------------

BAD_SPEC = """\
devices: {bogus: 1, p_fail: 2}
algorithms: {fit: {params: {k: 0}}}
data: {mislabelling_percentage: 1}
"""


def test_cli_validate_accepts_quickstart() -> None:
    spec = load_spec(QUICKSTART)
    result = CliRunner().invoke(app, ["validate", str(QUICKSTART)])
    assert result.exit_code == 0, result.output
    expected = (
        f"valid ({spec.simulation.dataset}, {spec.algorithms.federated_algorithm}, "
        f"{spec.devices.num} devices, {spec.simulation.num_rounds} rounds)"
    )
    assert expected in result.output


@pytest.mark.parametrize(("count", "devices", "rounds"), [(1, "1 device", "1 round"), (2, "2 devices", "2 rounds")])
def test_cli_validate_counts_in_the_singular_and_plural(tmp_path: Path, count: int, devices: str, rounds: str) -> None:
    path = write(
        tmp_path / "sim.yaml", f"simulation: {{dataset: digits, num_rounds: {count}}}\ndevices: {{num: {count}}}\n"
    )
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output == f"{path}: valid (digits, fedavg, {devices}, {rounds})\n"


def test_cli_validate_prints_every_error(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", BAD_SPEC)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "4 error(s)" in result.output
    assert "devices.bogus: unknown key" in result.output
    assert "devices.p_fail: Input should be less than 1 (got 2)" in result.output
    assert "algorithms.fit.params.k: Input should be greater than 0" in result.output
    assert "data.mislabelling_percentage: Input should be less than 1" in result.output
    assert "valid (" not in result.output


def test_cli_validate_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_python_dash_m_feles_validate(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "feles", "validate", str(QUICKSTART)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert ok.returncode == 0, ok.stderr
    assert "valid" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "feles", "validate", str(write(tmp_path / "bad.yaml", BAD_SPEC))],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert bad.returncode == 1
    for path in ("devices.bogus", "devices.p_fail", "algorithms.fit.params.k", "data.mislabelling_percentage"):
        assert f"{path}: " in bad.stderr
