"""PNG plots of one or more runs overlaid (one colour per run), drawn with matplotlib's Agg backend."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from feles.analysis.loading import Run
from feles.analysis.series import round_series

#: Rounds up to which every point gets a marker; beyond, markers would hide the line.
MARKER_ROUNDS = 40
DEFAULT_DPI = 100


def readable_unit(largest: float, units: Sequence[tuple[float, str]]) -> tuple[float, str]:
    """The largest (divisor, name) whose divisor fits `largest` at least twice; the first otherwise."""
    chosen = units[0]
    for divisor, name in units:
        if largest >= 2 * divisor:
            chosen = (divisor, name)
    return chosen


TIME_UNITS = [(1.0, "s"), (60.0, "min"), (3600.0, "h"), (86400.0, "days")]
ENERGY_UNITS = [(1.0, "mWh"), (1000.0, "Wh"), (1_000_000.0, "kWh")]
THOUSANDS = FuncFormatter(lambda value, _: f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}")


def _draw(axes: Axes, x: np.ndarray, run: Run, column: str, colour: str, style: str = "-", scale: float = 1.0) -> None:
    """The run's mean curve of `column`, with a ± std band where several repetitions ran the round."""
    series = round_series(run, column)
    mean, std = series.mean / scale, series.std / scale
    marker = "o" if len(x) <= MARKER_ROUNDS and style == "-" else None
    axes.plot(x, mean, style, color=colour, marker=marker, markersize=3, linewidth=1.6)
    band = series.n > 1
    if band.any():
        axes.fill_between(x, mean - std, mean + std, where=band, color=colour, alpha=0.18, linewidth=0)


def _time_axis(runs: Sequence[Run]) -> tuple[list[np.ndarray], float, str]:
    """Per run, the mean simulated time at the end of each round, and the unit that suits the longest run."""
    times = [round_series(run, "simulated_time").mean for run in runs]
    largest = max((float(np.nanmax(t)) for t in times if len(t) and not np.isnan(t).all()), default=0.0)
    divisor, name = readable_unit(largest, TIME_UNITS)
    return [t / divisor for t in times], divisor, name


def _round_axis(axes: Axes) -> None:
    axes.set_xlabel("round")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def _metric_name(runs: Sequence[Run]) -> str:
    """The runs' metric (accuracy, mae, mse), or `metric` when they measure different ones."""
    names = {run.metric for run in runs}
    return names.pop() if len(names) == 1 else "metric"


def _loss_name(runs: Sequence[Run]) -> str:
    tasks = {"cross-entropy" if run.metric == "accuracy" else "squared error" for run in runs}
    return tasks.pop() if len(tasks) == 1 else "cross-entropy or squared error"


def _accuracy_loss(runs: Sequence[Run], figure: Figure, by_time: bool) -> str:
    """Draws the test metric and loss; the metric's name."""
    values, loss = figure.subplots(1, 2)
    name = _metric_name(runs)
    xs, _, unit = _time_axis(runs) if by_time else ([round_series(run, "round").rounds for run in runs], 1.0, "")
    for index, (run, x) in enumerate(zip(runs, xs, strict=True)):
        _draw(values, x, run, run.test_metric_key, f"C{index}")
        _draw(loss, x, run, "test_loss", f"C{index}")
    values.set_ylabel(f"test {name}")
    loss.set_ylabel(f"test loss ({_loss_name(runs)})")
    for axes in (values, loss):
        if by_time:
            axes.set_xlabel(f"simulated time ({unit})")
        else:
            _round_axis(axes)
    values.set_title(f"Test {name}")
    loss.set_title("Test loss")
    return name


def accuracy_loss_by_round(runs: Sequence[Run], figure: Figure) -> None:
    """Test metric (accuracy, mae or mse) and loss of the global model after each round."""
    name = _accuracy_loss(runs, figure, by_time=False)
    figure.suptitle(f"Test {name} and loss per round")


def accuracy_loss_by_time(runs: Sequence[Run], figure: Figure) -> None:
    """Test metric and loss against the simulated time at the end of each round."""
    name = _accuracy_loss(runs, figure, by_time=True)
    figure.suptitle(f"Test {name} and loss over simulated time")


def devices(runs: Sequence[Run], figure: Figure) -> None:
    """Available devices, and selected and failed devices of the fit (solid) and eval (dashed) phases."""
    available, selected, failed = figure.subplots(1, 3, sharex=True)
    for index, run in enumerate(runs):
        colour = f"C{index}"
        x = round_series(run, "round").rounds
        _draw(available, x, run, "devices_available", colour)
        _draw(selected, x, run, "fit_selected", colour)
        _draw(selected, x, run, "eval_selected", colour, "--")
        _draw(failed, x, run, "fit_failed", colour)
        _draw(failed, x, run, "eval_failed", colour, "--")
    for axes, title in ((available, "Available"), (selected, "Selected"), (failed, "Failed")):
        axes.set_title(title)
        _round_axis(axes)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylim(bottom=0)
    available.set_ylabel("devices")
    phases = [Line2D([], [], color="0.3", linestyle="-"), Line2D([], [], color="0.3", linestyle="--")]
    for axes in (selected, failed):
        axes.legend(phases, ["fit", "eval"], fontsize="small", loc="best")
    figure.suptitle("Devices per round")


def energy(runs: Sequence[Run], figure: Figure) -> None:
    """Energy the devices spent in each round (fit + eval)."""
    axes = figure.subplots()
    largest = max(
        (float(np.nanmax(s.mean)) for s in (round_series(run, "energy") for run in runs) if len(s.mean)),
        default=0.0,
    )
    divisor, unit = readable_unit(largest, ENERGY_UNITS)
    for index, run in enumerate(runs):
        _draw(axes, round_series(run, "round").rounds, run, "energy", f"C{index}", scale=divisor)
    _round_axis(axes)
    axes.set_ylabel(f"energy per round ({unit})")
    axes.yaxis.set_major_formatter(THOUSANDS)
    axes.set_ylim(bottom=0)
    figure.suptitle("Energy spent by the devices per round")


#: Plot kind -> (drawing function, figure size in inches); each kind becomes `<kind>.png`.
PLOTS: dict[str, tuple[Callable[[Sequence[Run], Figure], None], tuple[float, float]]] = {
    "accuracy_loss_by_round": (accuracy_loss_by_round, (10.0, 4.2)),
    "accuracy_loss_by_time": (accuracy_loss_by_time, (10.0, 4.2)),
    "devices": (devices, (12.0, 4.0)),
    "energy": (energy, (7.0, 4.2)),
}


def plot(kind: str, runs: Sequence[Run]) -> Figure:
    """The figure of one plot kind, with a legend naming every run (and a note on the bands)."""
    draw, size = PLOTS[kind]
    figure = Figure(figsize=size, layout="constrained")
    draw(runs, figure)
    repeated = any(len({record["repetition"] for record in run.rounds}) > 1 for run in runs)
    note = "lines: mean over repetitions; bands: ± one standard deviation" if repeated else None
    return with_run_legend(figure, [run.label for run in runs], note)


def with_run_legend(
    figure: Figure, labels: Sequence[str], note: str | None = None, colours: Sequence[str] | None = None
) -> Figure:
    """The figure with a legend below it naming each run in its colour (C0, C1, ... unless given), `note` as its
    title; a grid."""
    chosen = colours or [f"C{index}" for index in range(len(labels))]
    handles = [Line2D([], [], color=colour, linewidth=2) for colour in chosen]
    figure.legend(
        handles, list(labels), loc="outside lower center", ncols=min(len(labels), 3), title=note, title_fontsize="small"
    )
    for axes in figure.axes:
        if not axes.images and axes.get_label() != "<colorbar>":  # no grid over a heat map
            axes.grid(True, alpha=0.3)
    return figure


def png_bytes(figure: Figure, dpi: int = DEFAULT_DPI) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_figure(buffer, dpi=dpi, format="png")
    return buffer.getvalue()


def save_png(figure: Figure, path: Path, dpi: int = DEFAULT_DPI) -> Path:
    path.write_bytes(png_bytes(figure, dpi))
    return path


def write_plots(runs: Sequence[Run], folder: Path, dpi: int = DEFAULT_DPI) -> list[Path]:
    """Every plot kind as `folder/<kind>.png`; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in PLOTS:
        written.append(save_png(plot(kind, runs), folder / f"{kind}.png", dpi))
    return written
