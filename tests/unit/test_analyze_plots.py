"""feles.analysis.plots: one PNG per plot kind, every run in every legend, repetitions as bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from feles.analysis.loading import Run
from feles.analysis.plots import PLOTS, plot, write_plots
from feles.analysis.series import round_series
from tests.unit.analyze_documents import accuracy_run, results_document

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def runs() -> list[Run]:
    return [
        Run(Path("a.json"), "fedavg, alpha 0.1", results_document(accuracy_run([0.2, 0.5, 0.6], [0.3, 0.4, 0.7]))),
        Run(Path("b.json"), "fedprox", results_document(accuracy_run([0.1, 0.3]), algorithm="fedprox")),
        Run(Path("c.json"), "scaffold", results_document(accuracy_run([0.4] * 50), algorithm="scaffold")),
    ]


def test_write_plots_writes_one_png_per_kind(runs: list[Run], tmp_path: Path) -> None:
    written = write_plots(runs, tmp_path / "plots")
    assert sorted(path.name for path in written) == sorted(f"{kind}.png" for kind in PLOTS)
    for path in written:
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert path.stat().st_size < 150_000


@pytest.mark.parametrize("kind", list(PLOTS))
def test_every_plot_names_every_run_in_its_legend(runs: list[Run], kind: str) -> None:
    figure = plot(kind, runs)
    assert len(figure.legends) == 1
    assert [text.get_text() for text in figure.legends[0].get_texts()] == [run.label for run in runs]
    for axes in figure.axes:
        assert axes.get_xlabel()  # every axis says what it shows
    assert any(axes.get_ylabel() for axes in figure.axes)


def test_accuracy_by_round_draws_the_mean_curve_of_each_run(runs: list[Run]) -> None:
    figure = plot("accuracy_loss_by_round", runs)
    accuracy = figure.axes[0]
    lines = accuracy.get_lines()
    assert len(lines) == len(runs)
    np.testing.assert_allclose(lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(lines[0].get_ydata(), [0.25, 0.45, 0.65])
    # Only the run with several repetitions has a ± std band.
    assert len([c for c in accuracy.collections if isinstance(c, PolyCollection)]) == 1


def test_time_axis_uses_a_readable_unit(runs: list[Run]) -> None:
    figure = plot("accuracy_loss_by_time", runs)
    # The longest run lasts 500 simulated seconds: minutes read better.
    assert figure.axes[0].get_xlabel() == "simulated time (min)"
    np.testing.assert_allclose(figure.axes[0].get_lines()[1].get_xdata(), [10 / 60, 20 / 60])


def test_energy_and_devices_plots_show_the_recorded_values(runs: list[Run]) -> None:
    energy = plot("energy", runs).axes[0]
    assert energy.get_ylabel() == "energy per round (mWh)"
    np.testing.assert_allclose(energy.get_lines()[1].get_ydata(), [100.0, 100.0])
    devices = plot("devices", runs)
    assert [axes.get_title() for axes in devices.axes] == ["Available", "Selected", "Failed"]
    # Selected: a fit (solid) and an eval (dashed) line per run.
    assert len(devices.axes[1].get_lines()) == 2 * len(runs)


def test_round_series_averages_over_the_repetitions_that_ran_the_round() -> None:
    run = Run(Path("r.json"), "r", results_document(accuracy_run([0.2, 0.4, 0.9], [0.4, 0.6])))
    series = round_series(run, "test_accuracy")
    np.testing.assert_allclose(series.rounds, [1, 2, 3])
    np.testing.assert_allclose(series.mean, [0.3, 0.5, 0.9])
    np.testing.assert_allclose(series.std, [np.std([0.2, 0.4], ddof=1), np.std([0.4, 0.6], ddof=1), 0.0])
    np.testing.assert_array_equal(series.n, [2, 2, 1])
