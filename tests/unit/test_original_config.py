"""Configs written for the original FELES: recognised, imported the original's way, translated key by key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from feles.cli import app
from feles.config import SimulationSpec, SpecError, load_spec, parse_spec
from feles.original_config import (
    MODEL_NAMES,
    UNAVAILABLE_MODEL_NAMES,
    has_original_keys,
    is_original_config,
    load_any_spec,
    read_original_config,
    translate,
    write_translated_spec,
)

REPO = Path(__file__).resolve().parents[2]
ORIGINAL = REPO / "tests" / "data" / "original"


def seed_42() -> int:
    return 42


def original(name: str) -> dict[str, Any]:
    return yaml.safe_load((ORIGINAL / name).read_text())


def key_of(warning: str) -> str:
    return warning.partition(": ")[0]


#: tests/data/original/config.yml as FELES reads it, key by key.
CONFIG_YML_TRANSLATED: dict[str, Any] = {
    "simulation": {
        "repetitions": 3,
        "output_folder": "output",
        "output_file": "limited_consumption.json",
        "dataset": "mnist",
        "model": "mlp_small",
        "metric": "accuracy",
        "num_rounds": 12,
        "stop_conds": {"metric": 1, "loss": 0, "target": "eval"},
        "initializer": "xavier_uniform",
        "seed": 123,
        "identical_repetitions": True,
    },
    "algorithms": {
        "federated_algorithm": "fedavg",
        "fit": {
            "aggregation": "fedavg",
            "selection": "limited_consumption",
            "selection_params": {"energy_limit": 3400},
            "update": "static",
            "data": "random",
            "params": {"k": 0.5, "epochs": 2, "batch_size": 16, "num_examples": 100},
        },
        "eval": {
            "selection": "random",
            "update": "static",
            "data": "random",
            "params": {"k": 0.5, "batch_size": 16, "num_examples": 100},
        },
        "optimizer": "sgd",
    },
    "devices": {"num": 20, "p_available": 0.8, "p_fail": 0.1, "energy_failures": False},
    "computation": {"ips_mean": 100, "ips_var": 50},
    "energy": {"avail_mean": 25000, "avail_var": 20000, "pow_comp_s": 100, "pow_net_s": 200},
    "network": {"speed_mean": 100000, "speed_var": 70000},
    "data": {"num_examples_mean": 1500, "num_examples_var": 0, "non_iid_partitions": 0, "mislabelling_percentage": 0},
}


def test_the_original_config_yml_translates_key_by_key() -> None:
    translation = translate(original("config.yml"), "config.yml", seed_42)
    assert translation.document == CONFIG_YML_TRANSLATED
    assert translation.warnings == [
        "simulation.model_name: 'mnist': its Keras model drops 20% of the hidden units in training (Dropout(0.2)); "
        "mlp_small has no dropout",
        "simulation.tf_verbosity: ignored: TensorFlow's log verbosity of the original's workers (0 silent, "
        "1 progress bar, 2 a line per epoch); FELES trains with PyTorch and logs through --log-level",
        "simulation.num_processes: ignored: the original's number of worker processes (its code never reads it); "
        "`feles run --workers N` sets FELES's",
        "algorithms.eval.params.epochs: 2 dropped: the original ignored it (evaluation is one pass over the data)",
    ]


def test_every_key_of_the_original_config_yml_is_in_the_mapping() -> None:
    document = original("config.yml")
    translation = translate(document, "config.yml", seed_42)
    mapped = {line.partition(":")[0].partition(" ->")[0] for line in translation.mapping}

    def keys(section: dict[str, Any], prefix: str = "") -> set[str]:
        found = set()
        for key, value in section.items():
            path = f"{prefix}{key}"
            found |= keys(value, f"{path}.") if isinstance(value, dict) else {path}
        return found

    assert keys(document) <= mapped
    assert "simulation.model_name: 'mnist' -> simulation.dataset: 'mnist', simulation.model: 'mlp_small'" in (
        translation.mapping
    )
    assert "algorithms.eval.params.epochs: dropped: evaluation is one pass" in translation.mapping


@pytest.mark.parametrize("name", ["config.yml", "config_1.yml", "use_case.yml", "regression.yml"])
def test_every_key_of_the_original_is_honoured_mapped_or_ignored_never_kept_as_a_feles_key(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/original-feles.md lists fit's k as honoured (same path, same meaning), not as a FELES key.
    monkeypatch.chdir(REPO)  # the original's imports are relative to the working directory
    document = read_original_config(ORIGINAL / name)
    translation = translate(document, name, seed_42)
    k = document["algorithms"]["fit"]["params"]["k"]
    assert f"algorithms.fit.params.k: {k!r}" in translation.mapping
    assert [line for line in translation.mapping if "kept as written" in line] == []


def test_one_warning_line_per_key() -> None:
    for name in ("config.yml", "config_1.yml", "use_case.yml", "regression.yml"):
        document = original(name)
        document.pop("import", None)
        warnings = translate(document, name, seed_42).warnings
        assert len({key_of(line) for line in warnings}) == len(warnings), warnings
        assert all("\n" not in line for line in warnings)


def test_the_config_1_and_2_pair_imports_relative_to_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    path = Path("tests/data/original/config_1.yml")
    assert is_original_config(path)
    merged = read_original_config(path)
    assert merged["simulation"]["model_name"] == "fashion_mnist"  # from config_2
    assert merged["simulation"]["repetitions"] == 1  # config_1 wins over config_2's 2
    assert merged["simulation"]["output_folder"] == "output/original-pair"
    assert merged["simulation"]["seed"] == "none"

    loaded = load_any_spec(path, seed_42)
    assert loaded.translation is not None
    spec = loaded.spec
    assert spec.simulation.seed == 42
    assert "simulation.seed: none -> drew seed 42 (recorded in the results' spec; reuse it to repeat the run)" in (
        loaded.translation.warnings
    )
    assert (spec.simulation.dataset, spec.simulation.model) == ("fashion_mnist", "mlp_small")
    assert spec.algorithms.federated_algorithm == "fedavg"
    assert (
        "algorithms.federated_algorithm: not given -> 'fedavg', FELES's default (the original has none)"
        in loaded.translation.mapping
    )
    assert spec.algorithms.optimizer == "sgd"  # Keras's "SGD"
    assert spec.algorithms.learning_rate is None and spec.algorithms.local_learning_rate == 0.01
    assert (spec.algorithms.fit.params.k, spec.algorithms.eval.params.k) == (0.5, 0.8)
    assert spec.algorithms.eval.params.epochs == 1
    assert spec.algorithms.eval.aggregation is None
    assert spec.simulation.stop_conds.target == "eval"
    assert (spec.simulation.stop_conds.metric, spec.simulation.stop_conds.loss) == (0.99, 0)
    assert spec.simulation.identical_repetitions is False  # seed none: the original re-seeded nothing
    assert spec.devices.energy_failures is False
    warned = {key_of(line) for line in loaded.translation.warnings}
    assert {
        "simulation.seed",
        "simulation.tf_verbosity",
        "simulation.num_processes",
        "devices.adversary_num",
        "algorithms.eval.aggregation",
        "algorithms.eval.params.k",
        "algorithms.eval.params.epochs",
    } <= warned
    assert (
        "algorithms.eval.params.k: 0.8 used for the eval phase; the original read fit's k (0.5) for eval too "
        "(a bug: its docs give eval its own k)"
    ) in loaded.translation.warnings


def test_the_original_import_is_not_relative_to_the_importing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as caught:
        load_any_spec(ORIGINAL / "config_1.yml")
    [(where, message)] = caught.value.errors
    assert where == "import"
    assert "'tests/data/original/config_2.yml' is not a file" in message
    assert "relative to the working directory" in message and str(tmp_path) in message


def test_an_original_config_imports_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yml").write_text("simulation: {model_name: fashion_mnist}\n")
    (tmp_path / "b.yml").write_text("import: [a.yml]\ndevices: {adversary_num: 0}\n")
    with pytest.raises(SpecError, match="imports one file"):
        load_any_spec(tmp_path / "b.yml")


def test_seed_none_and_null_each_draw_a_fresh_seed() -> None:
    for value in ("none", "None", None):
        document = {"simulation": {"model_name": "fashion_mnist", "seed": value}}
        translation = translate(document, "x", lambda: 7)
        assert translation.document["simulation"]["seed"] == 7
    drawn = {translate({"simulation": {"model_name": "mnist", "seed": "none"}}).document["simulation"]["seed"]}
    drawn |= {translate({"simulation": {"model_name": "mnist", "seed": "none"}}).document["simulation"]["seed"]}
    assert len(drawn) == 2 and all(0 <= seed < 2**32 for seed in drawn)


def test_the_use_case_runs_feddyn_with_its_own_aggregation() -> None:
    translation = translate(original("use_case.yml"), "use_case.yml", seed_42)
    spec = parse_spec(translation.document)
    assert spec.algorithms.federated_algorithm == "feddyn"
    assert spec.algorithms.fit.aggregation is None  # feddyn's own, as the original's FedDyn did
    assert spec.algorithms.fit.selection == "ucb_cs"  # FELES's ucb_cs is the original's discounted UCB
    assert spec.algorithms.optimizer == "adam" and spec.algorithms.local_learning_rate == 0.001
    assert spec.simulation.metric == "accuracy"  # Keras's sparse_categorical_accuracy
    assert spec.data.non_iid_partitions == 0.5 and spec.data.mislabelling_percentage == 0.1
    assert translation.warnings == [
        "simulation.tf_verbosity: ignored: TensorFlow's log verbosity of the original's workers (0 silent, "
        "1 progress bar, 2 a line per epoch); FELES trains with PyTorch and logs through --log-level",
        "simulation.num_processes: ignored: the original's number of worker processes (its code never reads it); "
        "`feles run --workers N` sets FELES's",
        "algorithms.fit.aggregation: 'fedavg' ignored: the original's FedDyn never reads it and aggregates its own "
        "way; FELES does the same (feddyn's own aggregation)",
        "devices.adversary_num: ignored: the original's number of malicious devices, which its code never reads "
        "(no device behaves adversarially); FELES has no adversaries either",
        "data.mislabelling_percentage: 0.1: the original's code never applied it (its mislabelling sits inside a "
        "docstring); FELES mislabels this fraction of each device's labels",
    ]


def test_the_regression_use_case_maps_boston_housing_rmsprop_and_mae() -> None:
    translation = translate(original("regression.yml"), "regression.yml", seed_42)
    document = translation.document
    assert (document["simulation"]["dataset"], document["simulation"]["model"]) == ("diabetes", "regression_mlp")
    assert document["simulation"]["metric"] == "mae"
    assert document["algorithms"]["optimizer"] == "rmsprop"
    assert "learning_rate" not in document["algorithms"]  # null: RMSprop's Keras default 0.001
    assert document["simulation"]["stop_conds"] == {"metric": 100, "loss": 0, "target": "eval"}
    assert (
        "simulation.stop_conds.metric: the original stopped once the eval mae was AT LEAST 100 (it compared every "
        "metric as an accuracy); FELES stops once it is at most 100"
    ) in translation.warnings
    assert (
        "simulation.model_name: 'boston_housing': Boston housing is not available offline (scikit-learn dropped it); "
        "FELES runs scikit-learn's bundled diabetes regression data (442 patients, 10 features) in its place, "
        "with regression_mlp"
    ) in translation.warnings


@pytest.mark.parametrize(
    ("model_name", "dataset", "model"),
    [
        ("mnist", "mnist", "mlp_small"),
        ("fashion_mnist", "fashion_mnist", "mlp_small"),
        ("emnist", "emnist", "cnn_batchnorm"),
        ("cifar10", "cifar10", "cnn_keras_tutorial"),
        ("cifar100", "cifar100", "cnn_keras_tutorial"),
        ("shakespeare", "shakespeare", "char_lstm_onehot"),
        ("boston_housing", "diabetes", "regression_mlp"),
    ],
)
def test_model_name_picks_the_dataset_and_the_originals_model(model_name: str, dataset: str, model: str) -> None:
    document = translate({"simulation": {"model_name": model_name}}).document
    assert (document["simulation"]["dataset"], document["simulation"]["model"]) == (dataset, model)
    # The original's 100-character windows of one pooled text.
    windows = {"seq_len": 100, "partition": "iid"} if model_name == "shakespeare" else None
    assert document["simulation"].get("dataset_params") == windows


def test_k_means_the_same_in_both_so_it_carries_no_warning() -> None:
    document = {"simulation": {"model_name": "mnist"}, "algorithms": {"fit": {"params": {"k": 0.5}}}}
    translation = translate(document)
    assert translation.document["algorithms"]["fit"]["params"]["k"] == 0.5
    assert [key_of(line) for line in translation.warnings] == ["simulation.model_name"]


@pytest.mark.parametrize("model_name", sorted(UNAVAILABLE_MODEL_NAMES))
def test_model_names_feles_cannot_run_are_refused_with_the_reason(model_name: str) -> None:
    with pytest.raises(SpecError) as caught:
        translate({"simulation": {"model_name": model_name}}, "uc.yml")
    [(where, message)] = caught.value.errors
    assert where == "simulation.model_name"
    assert message.startswith(f"{model_name!r} cannot run in FELES: ")
    assert "not available offline" in message


def test_an_unknown_model_name_lists_those_feles_runs() -> None:
    with pytest.raises(SpecError) as caught:
        translate({"simulation": {"model_name": "imagenet"}})
    [(where, message)] = caught.value.errors
    assert where == "simulation.model_name"
    assert message == f"unknown model_name 'imagenet'; FELES runs the original's {', '.join(sorted(MODEL_NAMES))}"


def test_model_name_and_a_feles_dataset_together_are_refused() -> None:
    with pytest.raises(SpecError, match=r"simulation\.dataset is given too"):
        translate({"simulation": {"model_name": "mnist", "dataset": "digits"}})


@pytest.mark.parametrize(
    ("keras", "feles"),
    [
        ("sgd", "sgd"),
        ("SGD", "sgd"),
        ("adam", "adam"),
        ("Adam", "adam"),
        ("rmsprop", "rmsprop"),
        ("RMSprop", "rmsprop"),
        ("adagrad", "adagrad"),
        ("Adagrad", "adagrad"),
    ],
)
def test_keras_optimizer_names(keras: str, feles: str) -> None:
    document = translate({"simulation": {"model_name": "fashion_mnist"}, "algorithms": {"optimizer": keras}}).document
    assert document["algorithms"]["optimizer"] == feles
    assert parse_spec(document).algorithms.learning_rate is None


@pytest.mark.parametrize(
    ("keras", "reason"),
    [("nadam", "Keras optimizer 'nadam' is not implemented in FELES"), ("lbfgs", "unknown optimizer 'lbfgs'")],
)
def test_other_optimizers_are_refused(keras: str, reason: str) -> None:
    with pytest.raises(SpecError) as caught:
        translate({"simulation": {"model_name": "mnist"}, "algorithms": {"optimizer": keras}})
    assert caught.value.errors == [
        ("algorithms.optimizer", f"{reason}; FELES has adagrad, adam, rmsprop, sgd (any case, as Keras reads them)")
    ]


@pytest.mark.parametrize(
    ("keras", "feles"),
    [
        ("accuracy", "accuracy"),
        ("acc", "accuracy"),
        ("sparse_categorical_accuracy", "accuracy"),
        ("mae", "mae"),
        ("mean_absolute_error", "mae"),
        ("mse", "mse"),
        ("mean_squared_error", "mse"),
    ],
)
def test_keras_metric_names(keras: str, feles: str) -> None:
    document = translate({"simulation": {"model_name": "mnist", "metric": keras}}).document
    assert document["simulation"]["metric"] == feles


def test_an_unknown_metric_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        translate({"simulation": {"model_name": "mnist", "metric": "auc"}})
    [(where, message)] = caught.value.errors
    assert where == "simulation.metric" and message.startswith("Keras metric 'auc' has no FELES counterpart")


def phases(fit: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    return {
        "simulation": {"model_name": "fashion_mnist"},
        "algorithms": {"fit": {"params": fit}, "eval": {"params": evaluation}},
    }


def test_eval_k_equal_to_fit_k_and_one_eval_epoch_warn_nothing() -> None:
    translation = translate(phases({"k": 0.3}, {"k": 0.3, "epochs": 1}))
    assert translation.warnings == []
    assert translation.document["algorithms"]["eval"]["params"] == {"k": 0.3}


def test_eval_without_k_takes_fits_as_the_original_did() -> None:
    translation = translate(phases({"k": 0.4}, {"batch_size": 8}))
    assert translation.document["algorithms"]["eval"]["params"] == {"k": 0.4, "batch_size": 8}
    assert "algorithms.eval.params.k: not given -> 0.4, fit's k, which the original used" in translation.mapping


@pytest.mark.parametrize("algorithm", ["feddyn", "fednova"])
def test_algorithms_that_aggregate_their_own_way_drop_fit_aggregation(algorithm: str) -> None:
    document = {"simulation": {"model_name": "mnist"}, "algorithms": {"federated_algorithm": algorithm}}
    document["algorithms"]["fit"] = {"aggregation": "fedavg"}
    translation = translate(document)
    assert "aggregation" not in translation.document["algorithms"].get("fit", {})
    [warning] = [line for line in translation.warnings if key_of(line) == "algorithms.fit.aggregation"]
    assert f"aggregates its own way; FELES does the same ({algorithm}'s own aggregation)" in warning
    same = copy.deepcopy(document)
    same["algorithms"]["fit"]["aggregation"] = algorithm
    assert not [line for line in translate(same).warnings if key_of(line) == "algorithms.fit.aggregation"]


def test_fedavg_keeps_its_aggregation() -> None:
    document = {
        "simulation": {"model_name": "mnist"},
        "algorithms": {"federated_algorithm": "fedavg", "fit": {"aggregation": "fednova"}},
    }
    assert translate(document).document["algorithms"]["fit"]["aggregation"] == "fednova"


def test_fedprox_takes_the_originals_mu() -> None:
    document = {"simulation": {"model_name": "mnist"}, "algorithms": {"federated_algorithm": "fedprox"}}
    translation = translate(document)
    assert translation.document["algorithms"]["algorithm_params"] == {"mu": 1.0}
    assert any(key_of(line) == "algorithms.federated_algorithm" for line in translation.warnings)
    document["algorithms"]["algorithm_params"] = {"mu": 0.1}
    assert translate(document).document["algorithms"]["algorithm_params"] == {"mu": 0.1}


def test_selectors_get_the_originals_built_in_limits() -> None:
    document = {
        "simulation": {"model_name": "mnist"},
        "algorithms": {"fit": {"selection": "limited_time"}, "eval": {"selection": "limited_consumption"}},
    }
    algorithms = translate(document).document["algorithms"]
    assert algorithms["fit"]["selection_params"] == {"total_time_limit": 5}
    assert algorithms["eval"]["selection_params"] == {"energy_limit": 3400}


def test_a_key_neither_knows_is_an_error_naming_it() -> None:
    document = {"simulation": {"model_name": "mnist", "tf_verbose": 1}, "devices": {"adversaries": 2}, "extra": 1}
    with pytest.raises(SpecError) as caught:
        translate(document, "x.yml")
    assert caught.value.errors == [
        ("simulation.tf_verbose", "unknown key: neither the original FELES nor FELES has it"),
        ("devices.adversaries", "unknown key: neither the original FELES nor FELES has it"),
        ("extra", "unknown key: neither the original FELES nor FELES has it"),
    ]


def test_feles_keys_in_an_original_config_are_kept_and_win() -> None:
    document = {
        "simulation": {"model_name": "mnist", "identical_repetitions": False, "test_shard_size": 500},
        "algorithms": {"learning_rate": 0.1, "fit": {"selection": "limited_time", "selection_params": {"auto": True}}},
        "devices": {"energy_failures": True},
    }
    translation = translate(document)
    out = translation.document
    assert out["simulation"]["identical_repetitions"] is False
    assert out["simulation"]["test_shard_size"] == 500
    assert out["algorithms"]["learning_rate"] == 0.1
    assert out["algorithms"]["fit"]["selection_params"] == {"auto": True}
    assert out["devices"]["energy_failures"] is True
    assert "algorithms.learning_rate: 0.1, a FELES key, kept as written" in translation.mapping


def test_an_initializer_other_than_default_is_refused() -> None:
    with pytest.raises(SpecError, match="knows only 'default'"):
        translate({"simulation": {"model_name": "mnist", "initializer": "he"}})


def test_feles_specs_are_never_taken_for_original_configs(tmp_path: Path) -> None:
    assert not is_original_config(REPO / "examples" / "quickstart.yaml")
    assert not has_original_keys(SimulationSpec().model_dump(mode="json"))
    full = tmp_path / "full.yaml"
    full.write_text(yaml.safe_dump(SimulationSpec().model_dump(mode="json")))
    loaded = load_any_spec(full)
    assert loaded.translation is None and loaded.spec == SimulationSpec()
    for section, key in [
        ("simulation", "model_name"),
        ("simulation", "tf_verbosity"),
        ("simulation", "num_processes"),
        ("devices", "adversary_num"),
    ]:
        assert has_original_keys({section: {key: 0}})


def test_a_feles_spec_importing_beside_itself_stays_a_feles_spec(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("devices: {num: 70}\n")
    (tmp_path / "top.yaml").write_text("import: base.yaml\nsimulation: {num_rounds: 3}\n")
    loaded = load_any_spec(tmp_path / "top.yaml")
    assert loaded.translation is None
    assert (loaded.spec.devices.num, loaded.spec.simulation.num_rounds) == (70, 3)


def test_errors_of_translated_fields_name_the_originals_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("simulation: {model_name: fashion_mnist, num_rounds: 0}\nalgorithms: {optimizer: sgd}\n")
    with pytest.raises(SpecError) as caught:
        load_any_spec(path)
    assert [where for where, _ in caught.value.errors] == ["simulation.num_rounds"]


def test_validate_refuses_an_accuracy_on_the_originals_regression_use_case(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("simulation: {model_name: boston_housing, metric: accuracy}\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "simulation.metric: accuracy does not measure regression (dataset 'diabetes'); use mae or mse" in (
        result.output
    )


def test_cli_validate_prints_the_mapping_and_the_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(app, ["validate", "tests/data/original/config_1.yml", "--show-translation"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        lines[0] == "tests/data/original/config_1.yml: a config written for the original FELES, translated key by key:"
    )
    assert "  simulation.model_name: 'fashion_mnist' -> simulation.dataset: 'fashion_mnist', simulation.model: " in (
        result.output
    )
    assert any(line.startswith("warning: simulation.seed: none -> drew seed ") for line in lines)
    assert "warning: devices.adversary_num: ignored: " in result.output
    translated = yaml.safe_load(result.output.split("# FELES spec translated from", 1)[1].split("\n", 1)[1])
    assert translated["simulation"]["dataset"] == "fashion_mnist"
    assert lines[-1] == "tests/data/original/config_1.yml: valid (fashion_mnist, fedavg, 6 devices, 2 rounds)"


def test_cli_validate_refuses_an_unavailable_model_name(tmp_path: Path) -> None:
    path = tmp_path / "chatbot.yml"
    path.write_text("simulation: {model_name: sentiment140, tf_verbosity: 1}\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "simulation.model_name: 'sentiment140' cannot run in FELES: the Sentiment140 tweets are not available" in (
        result.output
    )


def test_a_resumed_run_keeps_the_seed_its_translation_drew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "c.yml"
    config.write_text("simulation: {model_name: fashion_mnist, seed: none, output_folder: out}\n")
    first = write_translated_spec(config, load_any_spec(config, lambda: 11), resume=False)
    assert first == Path("out/c.feles.yaml")
    assert load_spec(first).simulation.seed == 11

    again = load_any_spec(config, lambda: 12)
    assert write_translated_spec(config, again, resume=True) == first
    assert load_spec(first).simulation.seed == 11
    assert "simulation.seed: none -> seed 11 of the run being resumed (from out/c.feles.yaml)" in (
        again.translation.warnings if again.translation else []
    )
    # Started afresh, `seed: none` draws again.
    write_translated_spec(config, load_any_spec(config, lambda: 13), resume=False)
    assert load_spec(first).simulation.seed == 13


def test_repetitions_are_identical_only_from_a_fixed_seed() -> None:
    fixed = translate({"simulation": {"model_name": "mnist", "repetitions": 3, "seed": 5}})
    assert fixed.document["simulation"]["identical_repetitions"] is True
    assert not [line for line in fixed.warnings if key_of(line) == "simulation.repetitions"]
    fresh = translate({"simulation": {"model_name": "mnist", "repetitions": 3, "seed": "none"}}, "x", seed_42)
    assert fresh.document["simulation"]["identical_repetitions"] is False
    assert (
        "simulation.repetitions: 3 repetitions with seed none: the original redrew the devices each repetition but "
        "kept one data partition and one set of initial weights; FELES redraws all three (identical_repetitions false)"
    ) in fresh.warnings


def test_cli_run_refuses_an_output_folder_it_cannot_write_the_translation_into(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("simulation: {model_name: fashion_mnist, output_folder: /proc/feles-nowhere}\n")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 1
    assert "cannot write the translated spec: /proc/feles-nowhere" in result.output
