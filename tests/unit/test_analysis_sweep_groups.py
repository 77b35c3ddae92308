"""A sweep's folder in feles analyze: one run per setting, its seeds as repetitions, device records merged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feles.analysis.loading import LoadError
from feles.analysis.summary import summarise
from feles.analysis.sweep_groups import sweep_groups
from feles.analyze import analyze
from tests.unit.analyze_documents import accuracy_run, results_document, write_document
from tests.unit.device_records_documents import availability_table, job, population_table, records_table, write_tables

SELECTION, SEED = "algorithms.fit.selection", "simulation.seed"


def write_sweep(folder: Path, cells: dict[str, tuple[str, int, list[float]]], records: bool = True) -> Path:
    """A sweep folder as `feles sweep` writes it: cells named by their (selection, seed, final accuracies)."""
    manifest = {
        "format": 1,
        "labels": {SELECTION: "sel", SEED: "seed"},
        "cells": [{"name": name, "values": {SELECTION: sel, SEED: seed}} for name, (sel, seed, _) in cells.items()],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.json").write_text(json.dumps(manifest))
    for name, (_, seed, accuracies) in cells.items():
        write_document(folder / name / "results.json", results_document(accuracy_run(accuracies)))
        if records:
            write_tables(
                folder / name,
                records_table([job(device) for device in range(seed)]),
                availability_table([range(4)]),
                population_table(4),
            )
    return folder


CELLS = {
    "sel-random-seed-1": ("random", 1, [0.2, 0.4]),
    "sel-random-seed-2": ("random", 2, [0.3, 0.6]),
    "sel-best-seed-1": ("best", 1, [0.5, 0.7]),
    "sel-best-seed-2": ("best", 2, [0.5, 0.9]),
}


def test_cells_that_differ_only_in_their_seed_are_repetitions_of_one_run(tmp_path: Path) -> None:
    groups = sweep_groups(write_sweep(tmp_path / "sweep", CELLS))
    assert [group.run.label for group in groups] == ["sel=random", "sel=best"]
    random = groups[0].run
    assert [(row["repetition"], row["test_accuracy"]) for row in random.rounds] == [
        (0, 0.2), (0, 0.4), (1, 0.3), (1, 0.6),
    ]  # fmt: skip
    summary = summarise(random, None)
    assert summary.repetitions == 2
    assert summary.final_metric.mean == pytest.approx(0.5)
    # Seed 1 selected device 0, seed 2 devices 0 and 1: their records keep apart as repetitions 0 and 1.
    data = groups[0].records
    assert data is not None and data.repetitions == [0, 1]
    assert data.of_repetition(1).records["device"].to_pylist() == [0, 1]
    assert data.of_repetition(1).population.num_rows == 4


def test_a_cell_without_results_is_left_out_with_a_warning(tmp_path: Path) -> None:
    folder = write_sweep(tmp_path / "sweep", CELLS)
    (folder / "sel-best-seed-2" / "results.json").unlink()
    warnings: list[str] = []
    groups = sweep_groups(folder, warnings.append)
    assert summarise(groups[1].run, None).repetitions == 1
    assert warnings == [
        f"skipped sweep cell sel-best-seed-2: no results yet ({folder}/sel-best-seed-2/results.json missing)"
    ]


def test_analyze_takes_a_sweep_folder_beside_plain_runs(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", CELLS)
    plain = write_document(tmp_path / "plain" / "results.json", results_document(accuracy_run([0.1])))
    analysis = analyze([plain.parent, sweep], plots=None)
    assert [run.label for run in analysis.runs] == ["plain (fedavg)", "sel=random", "sel=best"]
    assert [summary.repetitions for summary in analysis.summaries] == [1, 2, 2]
    assert [device_run.label for device_run in analysis.device_runs] == ["sel=random", "sel=best"]


def test_a_setting_named_like_a_plain_run_is_named_after_its_sweep_too(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", CELLS)
    plain = write_document(tmp_path / "plain" / "results.json", results_document(accuracy_run([0.1])))
    warnings: list[str] = []
    analysis = analyze([plain.parent, sweep], plots=None, labels=["sel=random"], warn=warnings.append)
    assert [run.label for run in analysis.runs] == ["sel=random", "sweep: sel=random", "sweep: sel=best"]
    assert warnings == []


def test_a_setting_whose_cells_lack_records_gets_no_device_analyses(tmp_path: Path) -> None:
    analysis = analyze([write_sweep(tmp_path / "sweep", CELLS, records=False)], plots=None)
    assert analysis.device_runs == [] and len(analysis.notes) == 2


def test_labels_name_results_files_not_sweep_settings(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="axis values"):
        analyze([write_sweep(tmp_path / "sweep", CELLS)], plots=None, labels=["a", "b"])


def test_a_folder_holding_sweeps_groups_their_cells_and_names_each_sweep(tmp_path: Path) -> None:
    write_sweep(tmp_path / "out" / "sw", CELLS)
    write_sweep(tmp_path / "out" / "sw2", CELLS)
    write_document(tmp_path / "out" / "small" / "results.json", results_document(accuracy_run([0.1])))
    warnings: list[str] = []
    analysis = analyze([tmp_path / "out"], plots=None, warn=warnings.append)
    assert warnings == []  # sweep.json is the sweep's manifest, no skipped results document
    assert [run.label for run in analysis.runs] == [
        "small (fedavg)", "sw: sel=random", "sw: sel=best", "sw2: sel=random", "sw2: sel=best",
    ]  # fmt: skip
    assert [summary.repetitions for summary in analysis.summaries] == [1, 2, 2, 2, 2]


def test_a_folder_holding_only_a_sweep_is_that_sweep(tmp_path: Path) -> None:
    write_sweep(tmp_path / "out" / "sw", CELLS)
    assert [run.label for run in analyze([tmp_path / "out"], plots=None).runs] == ["sel=random", "sel=best"]


def test_a_nested_sweep_without_results_yet_is_skipped_with_a_warning(tmp_path: Path) -> None:
    folder = write_sweep(tmp_path / "out" / "sw", CELLS)
    for name in CELLS:
        (folder / name / "results.json").unlink()
    write_document(tmp_path / "out" / "small" / "results.json", results_document(accuracy_run([0.1])))
    warnings: list[str] = []
    assert [run.label for run in analyze([tmp_path / "out"], plots=None, warn=warnings.append).runs] == [
        "small (fedavg)"
    ]
    assert warnings[-1] == f"skipped sweep {folder}: no cell of the sweep has results yet"
    (tmp_path / "out" / "small" / "results.json").unlink()
    with pytest.raises(LoadError, match="no FELES results file found in"):
        analyze([tmp_path / "out"], plots=None)
