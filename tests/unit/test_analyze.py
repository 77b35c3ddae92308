"""feles.analysis loading and summaries: which files are runs, their labels, and mean ± std per run."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from feles.analysis.loading import LoadError, Run, is_results_document, load_runs
from feles.analysis.summary import Stat, TargetError, check_target, summarise
from feles.analyze import analyze, default_plots_folder
from tests.unit.analyze_documents import accuracy_run, results_document, round_record, write_document


def make_run(document: dict, label: str = "run") -> Run:
    return Run(Path("results.json"), label, document)


# --- loading ---


def test_a_folder_yields_every_results_file_under_it_recursively(tmp_path: Path) -> None:
    write_document(tmp_path / "a" / "results.json", results_document(accuracy_run([0.5])))
    write_document(tmp_path / "b" / "deep" / "other.json", results_document(accuracy_run([0.6]), algorithm="fedprox"))
    runs = load_runs([tmp_path])
    assert [run.path for run in runs] == [tmp_path / "a" / "results.json", tmp_path / "b" / "deep" / "other.json"]
    assert [run.algorithm for run in runs] == ["fedavg", "fedprox"]


def test_non_feles_json_in_a_folder_is_skipped_with_a_warning(tmp_path: Path) -> None:
    write_document(tmp_path / "results.json", results_document(accuracy_run([0.5])))
    (tmp_path / "package.json").write_text('{"name": "not feles"}')
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / ".results.json.123.tmp").write_text("{")  # a half-written file of the orchestrator
    warnings: list[str] = []
    runs = load_runs([tmp_path], warn=warnings.append)
    assert len(runs) == 1
    assert len(warnings) == 2
    assert any("package.json" in w and "not a FELES results document" in w for w in warnings)
    assert any("broken.json" in w and "not JSON" in w for w in warnings)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda folder: folder / "missing.json", "no such file or folder"),
        (lambda folder: folder, "no FELES results file under it"),
        (lambda folder: write_document(folder / "x.json", {"name": "x"}), "not a FELES results document"),
    ],
)
def test_paths_without_results_are_clear_errors(tmp_path: Path, setup, message: str) -> None:
    path = setup(tmp_path)
    with pytest.raises(LoadError, match=message) as raised:
        load_runs([path])
    assert str(path) in str(raised.value)


def test_labels_are_folder_or_stem_plus_algorithm_and_unambiguous(tmp_path: Path) -> None:
    write_document(tmp_path / "quickstart" / "results.json", results_document(accuracy_run([0.5])))
    write_document(tmp_path / "alpha01.json", results_document(accuracy_run([0.5]), algorithm="scaffold"))
    write_document(tmp_path / "fedprox" / "results.json", results_document(accuracy_run([0.5]), algorithm="fedprox"))
    write_document(tmp_path / "x" / "same" / "results.json", results_document(accuracy_run([0.5])))
    write_document(tmp_path / "y" / "same" / "results.json", results_document(accuracy_run([0.5])))
    labels = [run.label for run in load_runs([tmp_path])]
    assert labels == ["alpha01 (scaffold)", "fedprox", "quickstart (fedavg)", "x/same (fedavg)", "y/same (fedavg)"]


def test_labels_follow_one_rule_the_path_under_the_common_folder_for_every_run_when_two_clash(tmp_path: Path) -> None:
    write_document(tmp_path / "out" / "a" / "seed-1" / "results.json", results_document(accuracy_run([0.5])))
    write_document(tmp_path / "out" / "a" / "seed-2" / "results.json", results_document(accuracy_run([0.5])))
    write_document(tmp_path / "out" / "b" / "seed-1" / "results.json", results_document(accuracy_run([0.5])))
    write_document(tmp_path / "out" / "small" / "results.json", results_document(accuracy_run([0.5])))
    labels = [run.label for run in load_runs([tmp_path / "out"])]
    assert labels == ["a/seed-1 (fedavg)", "a/seed-2 (fedavg)", "b/seed-1 (fedavg)", "small (fedavg)"]
    # Without a clash, the short names; a file and a folder of the same name, the relative file paths.
    assert [run.label for run in load_runs([tmp_path / "out" / "a"])] == ["seed-1 (fedavg)", "seed-2 (fedavg)"]
    write_document(tmp_path / "x" / "r.json", results_document(accuracy_run([0.5])))
    write_document(tmp_path / "x" / "r" / "results.json", results_document(accuracy_run([0.5])))
    assert [run.label for run in load_runs([tmp_path / "x"])] == ["r/results.json (fedavg)", "r.json (fedavg)"]


def test_a_sweep_manifest_in_a_folder_is_no_skipped_results_document(tmp_path: Path) -> None:
    write_document(tmp_path / "sw" / "sweep.json", {"format": 1, "labels": {}, "cells": []})
    write_document(tmp_path / "sw" / "cell" / "results.json", results_document(accuracy_run([0.5])))
    warnings: list[str] = []
    assert [run.label for run in load_runs([tmp_path], warn=warnings.append)] == ["cell (fedavg)"]
    assert warnings == []


def test_given_labels_name_the_runs_in_order_and_must_match_their_number(tmp_path: Path) -> None:
    first = write_document(tmp_path / "a.json", results_document(accuracy_run([0.5])))
    second = write_document(tmp_path / "b.json", results_document(accuracy_run([0.5])))
    assert [run.label for run in load_runs([second, first], ["B", "A"])] == ["B", "A"]
    with pytest.raises(LoadError, match="1 --label given for 2 results files"):
        load_runs([first, second], ["only one"])


def test_a_file_given_twice_is_one_run(tmp_path: Path) -> None:
    path = write_document(tmp_path / "r" / "results.json", results_document(accuracy_run([0.5])))
    assert len(load_runs([tmp_path, path, tmp_path / "r"])) == 1


def test_is_results_document() -> None:
    assert is_results_document(results_document(accuracy_run([0.5])))
    assert not is_results_document([1, 2])
    assert not is_results_document({"feles_version": "0.1.0", "spec": {}, "rounds": "no list"})


def test_analyze_writes_plots_into_the_given_folder_and_defaults_beside_the_results(tmp_path: Path) -> None:
    write_document(tmp_path / "out" / "results.json", results_document(accuracy_run([0.5, 0.6])))
    outcome = analyze([tmp_path / "out"], tmp_path / "pictures")
    assert [summary.label for summary in outcome.summaries] == ["out (fedavg)"]
    assert outcome.plots and all(path.parent == tmp_path / "pictures" for path in outcome.plots)
    assert default_plots_folder([tmp_path / "out"]) == tmp_path / "out" / "plots"
    assert default_plots_folder([tmp_path / "out" / "results.json"]) == tmp_path / "out" / "plots"
    assert analyze([tmp_path / "out"], None).plots == []


# --- summaries ---


def test_stat_is_mean_and_sample_std() -> None:
    assert Stat.of([0.5, 0.7, 0.9]) == Stat(pytest.approx(0.7), pytest.approx(0.2), 3)
    assert Stat.of([4.0]) == Stat(4.0, 0.0, 1)
    assert Stat.of([]) == Stat(None, None, 0)
    assert Stat.of([1.0, math.nan]) == Stat(1.0, 0.0, 1)  # a null in the JSON is no value


def test_summary_over_repetitions() -> None:
    # Three repetitions with different final/best accuracies, times, energies and failures.
    repetitions = [
        [round_record(0, 0, 0.3, fit_failed=1), round_record(0, 1, 0.6), round_record(0, 2, 0.5, eval_failed=2)],
        [round_record(1, 0, 0.4), round_record(1, 1, 0.7, energy=250.0), round_record(1, 2, 0.8)],
        [round_record(2, 0, 0.2, fit_failed=3, eval_failed=1), round_record(2, 1, 0.5), round_record(2, 2, 0.6)],
    ]
    repetitions[2][2]["simulated_time"] = 60.0
    summary = summarise(make_run(results_document(repetitions)))
    assert summary.repetitions == 3
    assert summary.rounds == Stat(3.0, 0.0, 3)
    assert summary.final_metric.mean == pytest.approx(statistics.fmean([0.5, 0.8, 0.6]))
    assert summary.final_metric.std == pytest.approx(statistics.stdev([0.5, 0.8, 0.6]))
    assert summary.best_metric.mean == pytest.approx(statistics.fmean([0.6, 0.8, 0.6]))
    assert summary.best_metric.std == pytest.approx(statistics.stdev([0.6, 0.8, 0.6]))
    # Simulated time: the last round's cumulative time of each repetition.
    assert summary.simulated_time.mean == pytest.approx(statistics.fmean([30.0, 30.0, 60.0]))
    # Energy: the sum over the repetition's rounds.
    assert summary.energy.mean == pytest.approx(statistics.fmean([300.0, 450.0, 300.0]))
    # Failures: fit_failed + eval_failed over the repetition's rounds.
    assert summary.failures.mean == pytest.approx(statistics.fmean([3, 0, 4]))
    assert summary.failures.std == pytest.approx(statistics.stdev([3, 0, 4]))


def test_rounds_to_target_counts_rounds_until_the_spec_metric_is_first_reached() -> None:
    document = results_document(accuracy_run([0.3, 0.75, 0.6, 0.8], [0.7, 0.71, 0.9], [0.1, 0.2, 0.3]), metric=0.7)
    summary = summarise(make_run(document))
    assert summary.target == 0.7
    assert summary.target_reached == 2
    assert summary.rounds_to_target == Stat(1.5, pytest.approx(statistics.stdev([2, 1])), 2)


def test_rounds_to_target_is_missing_when_never_reached_or_without_target() -> None:
    never = summarise(make_run(results_document(accuracy_run([0.3, 0.4]), metric=0.9)))
    assert never.target == 0.9 and never.target_reached == 0 and never.rounds_to_target.mean is None
    untargeted = summarise(make_run(results_document(accuracy_run([0.3, 0.4]))))
    assert untargeted.target is None and untargeted.rounds_to_target.mean is None


def test_a_target_given_to_summarise_overrides_the_spec() -> None:
    summary = summarise(make_run(results_document(accuracy_run([0.3, 0.4, 0.5]), metric=0.9)), target=0.4)
    assert summary.target == 0.4 and summary.rounds_to_target == Stat(2.0, 0.0, 1)


def test_a_run_still_in_progress_is_summarised_from_the_rounds_it_has() -> None:
    document = results_document(accuracy_run([0.3, 0.5]), status="running")
    document["rounds"][-1]["test_loss"] = None  # NaN losses are written as null
    summary = summarise(make_run(document))
    assert summary.status == "running"
    assert summary.final_metric == Stat(0.5, 0.0, 1)
    assert summary.final_loss == Stat(None, None, 0)


def test_a_run_without_rounds_has_no_figures() -> None:
    summary = summarise(make_run(results_document([])))
    assert summary.repetitions == 0
    assert summary.final_metric.mean is None and summary.energy.mean is None


def test_documents_round_trip_through_json(tmp_path: Path) -> None:
    document = results_document(accuracy_run([0.5, 0.9]), metric=0.8)
    path = write_document(tmp_path / "results.json", document)
    assert json.loads(path.read_text()) == document
    assert summarise(load_runs([path])[0]).rounds_to_target == Stat(2.0, 0.0, 1)


def mae_run(*maes_per_repetition: list[float], metric: float | None = None) -> Run:
    """A regression run: rounds of test_mae, the document's metric mae."""
    repetitions = [
        [round_record(rep, round_, 0.0, test_mae=mae) for round_, mae in enumerate(maes)]
        for rep, maes in enumerate(maes_per_repetition)
    ]
    for rounds in repetitions:
        for record in rounds:
            del record["test_accuracy"]
    document = results_document(repetitions, metric=metric)
    document["metric"] = "mae"
    return make_run(document)


def test_an_error_target_is_reached_at_or_below_it() -> None:
    run = mae_run([80.0, 50.0, 45.0], [70.0, 60.0, 55.0])
    assert summarise(run, target=50.0).rounds_to_target == Stat(2.0, 0.0, 1)  # the second never gets to 50
    assert summarise(run, target=70.0).rounds_to_target == Stat(1.5, pytest.approx(0.7071068), 2)
    assert summarise(run, target=10.0).target_reached == 0
    assert summarise(mae_run([80.0, 40.0], metric=45.0)).rounds_to_target == Stat(2.0, 0.0, 1)  # the spec's


@pytest.mark.parametrize(
    ("target", "metrics", "message"),
    [
        (1.5, ["accuracy"], "1.5 is not an accuracy: the runs measure accuracy, between 0 and 1"),
        (-0.1, ["accuracy", "accuracy"], "-0.1 is not an accuracy"),
        (-1.0, ["mae"], "-1 is not a mae: the runs measure mae, an error of at least 0"),
        (math.nan, ["mse"], "nan is not a number"),
        (0.5, ["accuracy", "mae"], "the runs measure different metrics (accuracy, mae)"),
    ],
)
def test_a_target_must_be_a_value_of_the_runs_metric(target: float, metrics: list[str], message: str) -> None:
    with pytest.raises(TargetError) as raised:
        check_target(target, metrics)
    assert str(raised.value).startswith(message)


def test_targets_that_fit_the_runs_metric_pass() -> None:
    for target, metrics in ((None, ["accuracy", "mae"]), (0.0, ["accuracy"]), (1.0, ["accuracy"]), (50.0, ["mae"])):
        check_target(target, metrics)
