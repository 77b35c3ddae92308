"""`feles analyze`: results files in, a table per run and PNG plots out (the pieces live in feles.analysis)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from feles.analysis.loading import LoadError, Run, load_runs
from feles.analysis.plots import write_plots
from feles.analysis.summary import RunSummary, summarise

__all__ = ["Analysis", "LoadError", "analyze", "default_plots_folder"]

#: Folder name of the plots when --plots is not given: inside the first folder analysed.
PLOTS_FOLDER = "plots"


@dataclass(frozen=True)
class Analysis:
    runs: list[Run]
    summaries: list[RunSummary]
    plots: list[Path]


def default_plots_folder(paths: Sequence[Path]) -> Path:
    """`<first folder>/plots`, or `plots` beside the first file, so the plots sit with the results."""
    first = paths[0]
    return (first if first.is_dir() else first.parent) / PLOTS_FOLDER


def analyze(
    paths: Sequence[Path],
    plots: Path | None,
    labels: Sequence[str] = (),
    target: float | None = None,
    warn: Callable[[str], None] = lambda message: None,
) -> Analysis:
    """Load every results file under `paths`, summarise each run and write the plots into `plots` (None: none)."""
    runs = load_runs(paths, labels, warn)
    summaries = [summarise(run, target) for run in runs]
    written = write_plots(runs, plots) if plots is not None else []
    return Analysis(runs, summaries, written)
