"""`feles analyze`: results files in; a table per run, PNG plots and an HTML report out (pieces: feles.analysis).

Runs with device records (`devices/` beside results.json) get the device analyses too; a run without
them (an older FELES) is analysed as before, with a note saying why its device analyses are missing. A
sweep's folder (`feles sweep`), given or under a folder given, gives one run per setting, its seeds as repetitions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from feles.analysis.comparison import DeviceSummary, device_summary
from feles.analysis.device_plots import DEVICE_PLOTS, device_plot
from feles.analysis.device_records import DeviceRecords, DeviceRun, load_device_records, missing_note
from feles.analysis.loading import LoadError, Run, distinct_names, load_runs
from feles.analysis.plots import DEFAULT_DPI, PLOTS, plot, png_bytes
from feles.analysis.report import ReportInput, write_report
from feles.analysis.summary import RunSummary, TargetError, check_target, summarise
from feles.analysis.sweep_groups import sweep_groups
from feles.sweep import MANIFEST, is_sweep_folder

__all__ = [
    "Analysis",
    "LoadError",
    "OutputError",
    "TargetError",
    "analyze",
    "default_plots_folder",
    "output_problem",
    "render_figures",
]

#: Folder name of the plots when --plots is not given: inside the first folder analysed.
PLOTS_FOLDER = "plots"


class OutputError(ValueError):
    """A plots folder or report file that cannot be written; the message names the path and why."""


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


def output_problem(path: Path, folder: bool) -> str | None:
    """Why `path` cannot be written as a folder (`folder`) or as a file, or None when it can."""
    try:
        existing = next(candidate for candidate in (path, *path.parents) if candidate.exists())
    except OSError as error:
        return error.strerror or str(error)
    if existing == path and path.is_dir() != folder:
        return "is a file, not a folder" if folder else "is a folder; give the report a file name (e.g. report.html)"
    if existing != path and not existing.is_dir():
        return f"{existing} is a file, not a folder"
    return None if os.access(existing, os.W_OK) else f"{existing} is not writable"


def _check_outputs(plots: Path | None, report: Path | None) -> None:
    """Raise OutputError for an output path that cannot be written, before any work is done."""
    for path, folder in ((plots, True), (report, False)):
        problem = None if path is None else output_problem(path, folder)
        if problem is not None:
            raise OutputError(f"{path}: {problem}")


def sweep_folders(paths: Sequence[Path]) -> list[Path]:
    """The sweep folders among `paths` and under the other folders given, each once, in order."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            continue
        nested = [path] if is_sweep_folder(path) else sorted(m.parent for m in path.rglob(MANIFEST) if m.is_file())
        found += [folder for folder in nested if folder not in found]
    return found


def _runs_and_records(
    paths: Sequence[Path], labels: Sequence[str], warn: Callable[[str], None]
) -> tuple[list[Run], list[DeviceRecords | None]]:
    """The runs under `paths` (labelled in order) with their device records; then each sweep folder's settings,
    named after their sweep when there are several."""
    sweeps = sweep_folders(paths)
    if labels and sweeps and all(path in sweeps for path in paths):
        raise LoadError("--label names results files; a sweep's settings are named after their axis values")
    others = [path for path in paths if path not in sweeps]
    runs = load_runs(others, labels, warn, sweeps) if others else []
    records = [load_device_records(run) for run in runs]
    names = distinct_names(sweeps) if len(sweeps) > 1 else [None] * len(sweeps)
    for folder, name in zip(sweeps, names, strict=True):
        groups = sweep_groups(folder, warn, name)
        if name is None and {group.run.label for group in groups} & {run.label for run in runs}:
            # A setting named like a plain run: the sweep's name goes first, as when there are several.
            groups = sweep_groups(folder, lambda message: None, distinct_names([folder])[0])
        if not groups and folder in paths:
            raise LoadError(f"{folder}: no cell of the sweep has results yet")
        if not groups:
            warn(f"skipped sweep {folder}: no cell of the sweep has results yet")
        runs += [group.run for group in groups]
        records += [group.records for group in groups]
    if not runs:
        raise LoadError(f"no FELES results file found in {', '.join(str(path) for path in paths)}")
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
    the HTML report into `report` (None: none).

    Raises, before anything is written: OutputError for a `plots` or `report` path that cannot be written,
    LoadError for paths without results, TargetError for a `target` that is no value of the runs' metric.
    """
    _check_outputs(plots, report)
    runs, records = _runs_and_records(paths, labels, warn)
    check_target(target, [run.metric for run in runs])
    if report is not None and any(report.resolve() == run.path.resolve() for run in runs):
        raise OutputError(f"{report}: is a results file being analysed; the report would overwrite it")
    summaries = [summarise(run, target) for run in runs]
    device_runs = [
        DeviceRun(run, data, f"C{index}")
        for index, (run, data) in enumerate(zip(runs, records, strict=True))
        if data is not None
    ]
    notes = [missing_note(run) for run, data in zip(runs, records, strict=True) if data is None]
    figures = render_figures(runs, device_runs) if plots is not None or report is not None else {}
    written = _write_outputs(runs, summaries, device_runs, notes, figures, plots, report)
    return Analysis(runs, summaries, written, device_runs, notes, report)


def _write_outputs(
    runs: list[Run],
    summaries: list[RunSummary],
    device_runs: list[DeviceRun],
    notes: list[str],
    figures: dict[str, bytes],
    plots: Path | None,
    report: Path | None,
) -> list[Path]:
    """Write the figures into `plots` and the report into `report` (None: not that one); the figures written."""
    written = []
    try:
        if plots is not None:
            plots.mkdir(parents=True, exist_ok=True)
            for kind, png in figures.items():
                (plots / f"{kind}.png").write_bytes(png)
                written.append(plots / f"{kind}.png")
        if report is not None:
            by_run = {id(device_run.run): device_summary(device_run) for device_run in device_runs}
            devices: list[DeviceSummary | None] = [by_run.get(id(run)) for run in runs]
            write_report(report, ReportInput(runs, summaries, devices, figures, notes))
    except OSError as error:
        # What the checks before the work cannot foresee: a full disk, a path that changed meanwhile.
        raise OutputError(f"{error.filename or plots or report}: cannot write it ({error.strerror or error})") from None
    return written
