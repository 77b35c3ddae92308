"""feles.analysis.device_plots and feles analyze: every device figure names every run, files are PNGs."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from feles.analysis.device_plots import DEVICE_PLOTS, device_plot
from feles.analysis.device_records import DeviceRun, load_device_records
from feles.analysis.loading import load_runs
from feles.analysis.plots import PLOTS
from feles.analyze import analyze
from feles.records import Table, part_path, write_part
from tests.unit.device_records_documents import (
    availability_table,
    population_table,
    records_table,
    synthetic_tables,
    write_run,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three runs with records (one of two repetitions, one with unfair selection) and one without."""
    root = tmp_path_factory.mktemp("runs")
    write_run(root / "a", synthetic_tables(30, 6, repetitions=2, seed=1), [[0.5] * 6, [0.6] * 6], num_devices=30)
    write_run(root / "b", synthetic_tables(30, 6, prefer_fast=2.0, seed=2), [[0.4] * 6], "fedprox", num_devices=30)
    write_run(root / "c", synthetic_tables(40, 8, adapt_epochs=True, seed=3), [[0.3] * 8], num_devices=40)
    write_run(root / "old", None, [[0.2] * 6])
    return root


@pytest.fixture(scope="module")
def device_runs(results: Path) -> list[DeviceRun]:
    runs = load_runs([results])
    return [DeviceRun(run, data, f"C{i}") for i, run in enumerate(runs) if (data := load_device_records(run))]


@pytest.mark.parametrize("kind", list(DEVICE_PLOTS))
def test_every_device_figure_names_every_run(device_runs: list[DeviceRun], kind: str) -> None:
    figure = device_plot(kind, device_runs)
    labels = [run.label for run in device_runs]
    per_run = DEVICE_PLOTS[kind][2]
    if per_run:  # a panel per run, titled with its name
        titles = [axes.get_title(loc="left") for axes in figure.axes if axes.get_label() != "<colorbar>"]
        assert [title.split(":")[0] for title in titles] == labels
    else:
        assert len(figure.legends) == 1
        assert [text.get_text() for text in figure.legends[0].get_texts()] == labels
    panels = [axes for axes in figure.axes if axes.get_label() != "<colorbar>"]
    # Every panel says what its axes show (panels sharing the round axis: the bottom one).
    assert all(axes.get_xlabel() for axes in (panels[-1:] if kind == "round_time" else panels))
    assert all(axes.get_ylabel() for axes in panels if axes.get_subplotspec().is_first_col())
    assert figure.get_suptitle()


def test_device_figures_keep_the_colour_each_run_has_among_all_runs(device_runs: list[DeviceRun]) -> None:
    figure = device_plot("consumption", device_runs)
    colours = [handle.get_color() for handle in figure.legends[0].legend_handles]
    assert colours == ["C0", "C1", "C2"]
    shifted = [DeviceRun(run.run, run.data, f"C{index + 3}") for index, run in enumerate(device_runs)]
    lines = device_plot("consumption", shifted).axes[0].get_lines()
    assert [line.get_color() for line in lines] == ["C3", "C4", "C5"]


def test_the_selection_matrix_title_says_when_it_is_binned(device_runs: list[DeviceRun]) -> None:
    titles = [axes.get_title(loc="left") for axes in device_plot("selection_matrix", device_runs).axes]
    assert "every device and round" in titles[0]


def test_figures_say_how_repetitions_are_treated(device_runs: list[DeviceRun]) -> None:
    # Run a has two repetitions: per-round curves are means, distributions pool them.
    assert device_plot("consumption", device_runs).legends[0].get_title().get_text() == (
        "per round: mean over repetitions"
    )
    assert "pooled over repetitions" in device_plot("participation", device_runs).legends[0].get_title().get_text()
    assert "(first repetition)" in device_plot("selection_matrix", device_runs).get_suptitle()
    assert "mean over repetitions" in device_plot("round_time", device_runs).get_suptitle()


def test_analyze_writes_the_device_figures_beside_the_others(results: Path, tmp_path: Path) -> None:
    analysis = analyze([results], tmp_path / "plots")
    assert sorted(path.name for path in analysis.plots) == sorted(f"{kind}.png" for kind in [*PLOTS, *DEVICE_PLOTS])
    for path in analysis.plots:
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert 5_000 < path.stat().st_size < 400_000
    assert [run.label for run in analysis.device_runs] == ["a (fedavg)", "b (fedprox)", "c (fedavg)"]
    (note,) = analysis.notes
    assert note.startswith("old (fedavg): no device records") and "device analyses skipped" in note


def test_analyze_of_runs_without_records_draws_only_the_results_figures(results: Path, tmp_path: Path) -> None:
    analysis = analyze([results / "old"], tmp_path / "plots")
    assert sorted(path.name for path in analysis.plots) == sorted(f"{kind}.png" for kind in PLOTS)
    assert analysis.device_runs == [] and len(analysis.notes) == 1


def test_participation_of_a_run_that_never_selected_a_device(device_runs: list[DeviceRun], tmp_path: Path) -> None:
    """No device was ever available: no selection, so Jain and Gini are undefined; no numpy warning, no NaN."""
    write_run(tmp_path / "idle", (records_table([]), availability_table([[], [], []]), population_table(5)), [[0.1]])
    for round_ in range(3):  # the orchestrator writes a part per round, empty when nobody was selected
        write_part(part_path(tmp_path / "idle", Table.RECORDS, 0, round_), records_table([]))
    (run,) = load_runs([tmp_path / "idle"])
    data = load_device_records(run)
    assert data is not None
    idle = DeviceRun(run, data, "C3")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = device_plot("participation", [*device_runs, idle])
    histogram, lorenz = figure.axes[:2]
    notes = [text.get_text() for text in lorenz.texts]
    assert notes[-1] == "no fit selection  never 5"
    assert not any("nan" in note for note in notes)
    assert len(lorenz.get_lines()) == len(device_runs) + 1  # no Lorenz curve for it, the equality line
    assert histogram.get_lines()[-1].get_ydata().tolist() == [1.0]  # every device at k = 0
    assert histogram.get_xlim()[0] < 0 < 1 <= histogram.get_xlim()[1]
