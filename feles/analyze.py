"""`feles analyze`: results files in; a table per run, PNG plots and an HTML report out (pieces: feles.analysis).

Runs with device records (`devices/` beside results.json) get the device analyses too; a run without
them (an older FELES) is analysed as before, with a note saying why its device analyses are missing. A
sweep's folder (`feles sweep`) gives one run per setting, its seeds as repetitions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from feles.analysis.comparison import DeviceSummary, device_summary
from feles.analysis.device_plots import DEVICE_PLOTS, device_plot
from feles.analysis.device_records import DeviceRecords, DeviceRun, load_device_records, missing_note
from feles.analysis.loading import LoadError, Run, load_runs
from feles.analysis.plots import DEFAULT_DPI, PLOTS, plot, png_bytes
from feles.analysis.report import ReportInput, write_report
from feles.analysis.summary import RunSummary, summarise
from feles.analysis.sweep_groups import sweep_groups
from feles.sweep import is_sweep_folder

__all__ = ["Analysis", "LoadError", "analyze", "default_plots_folder", "render_figures"]

#: Folder name of the plots when --plots is not given: inside the first folder analysed.
PLOTS_FOLDER = "plots"


@dataclass(frozen=True)
class Analysis:
    runs: list[Run]
    summaries: list[RunSummary]
    plots: list[Path]
    #: The runs that have device records, in the order of `runs`.
    device_runs: list[DeviceRun]
    #: One line per run without device records, saying so.
    notes: list[str]
    report: Path | None = None


def default_plots_folder(paths: Sequence[Path]) -> Path:
    """`<first folder>/plots`, or `plots` beside the first file, so the plots sit with the results."""
    first = paths[0]
    return (first if first.is_dir() else first.parent) / PLOTS_FOLDER


def render_figures(runs: Sequence[Run], device_runs: Sequence[DeviceRun], dpi: int = DEFAULT_DPI) -> dict[str, bytes]:
    """Every plot kind (the device ones only when some run has records) as PNG bytes, in display order."""
    figures = {kind: png_bytes(plot(kind, runs), dpi) for kind in PLOTS}
    if device_runs:
        figures.update({kind: png_bytes(device_plot(kind, device_runs), dpi) for kind in DEVICE_PLOTS})
    return figures


def _runs_and_records(
    paths: Sequence[Path], labels: Sequence[str], warn: Callable[[str], None]
) -> tuple[list[Run], list[DeviceRecords | None]]:
    """The runs under `paths` (labelled in order) with their device records; then each sweep folder's settings."""
    sweeps = [path for path in paths if path.is_dir() and is_sweep_folder(path)]
    others = [path for path in paths if path not in sweeps]
    runs = load_runs(others, labels, warn) if others else []
    records = [load_device_records(run) for run in runs]
    for folder in sweeps:
        groups = sweep_groups(folder, warn)
        if not groups:
            raise LoadError(f"{folder}: no cell of the sweep has results yet")
        runs += [group.run for group in groups]
        records += [group.records for group in groups]
    if labels and sweeps and not others:
        raise LoadError("--label names results files; a sweep's settings are named after their axis values")
    return runs, records


def analyze(
    paths: Sequence[Path],
    plots: Path | None,
    labels: Sequence[str] = (),
    target: float | None = None,
    warn: Callable[[str], None] = lambda message: None,
    report: Path | None = None,
) -> Analysis:
    """Load every results file under `paths`, summarise each run, write the plots into `plots` (None: none) and
    the HTML report into `report` (None: none)."""
    runs, records = _runs_and_records(paths, labels, warn)
    summaries = [summarise(run, target) for run in runs]
    device_runs = [
        DeviceRun(run, data, f"C{index}")
        for index, (run, data) in enumerate(zip(runs, records, strict=True))
        if data is not None
    ]
    notes = [missing_note(run) for run, data in zip(runs, records, strict=True) if data is None]
    figures = render_figures(runs, device_runs) if plots is not None or report is not None else {}
    written = []
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        for kind, png in figures.items():
            (plots / f"{kind}.png").write_bytes(png)
            written.append(plots / f"{kind}.png")
    if report is not None:
        by_run = {id(device_run.run): device_summary(device_run) for device_run in device_runs}
        devices: list[DeviceSummary | None] = [by_run.get(id(run)) for run in runs]
        write_report(report, ReportInput(runs, summaries, devices, figures, notes))
    return Analysis(runs, summaries, written, device_runs, notes, report)
