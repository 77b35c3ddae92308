"""PNG figures of the device records, every run overlaid (one colour per run) or facing the others (a panel each).

Each figure says how it treats repetitions: per-round curves are means over repetitions, distributions
pool every (repetition, device), and per-device-id figures show the first repetition (a repetition draws
new devices, so device 7 of two repetitions is not the same device).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from feles.analysis.device_records import DeviceRecords, DeviceRun
from feles.analysis.device_stats import DeviceStats, device_stats
from feles.analysis.fairness import PHASES, REASONS, Fairness, failures_by_reason, fairness
from feles.analysis.fairness import participation as participation_of
from feles.analysis.plots import (
    ENERGY_UNITS,
    THOUSANDS,
    TIME_UNITS,
    readable_unit,
    with_run_legend,
)
from feles.analysis.selection_matrix import bin_size, selection_matrix
from feles.analysis.time_energy import device_times, mean_by_round, round_consumption, round_times
from feles.analysis.work import QUANTITIES, configured_vs_executed

#: Most devices a per-device heat map shows: beyond, every k-th device id.
MAX_DEVICE_POINTS = 200
#: Rounds up to which the round-time split is drawn as bars; beyond, as stacked areas.
BAR_ROUNDS = 60


def _colour(runs: Sequence[DeviceRun], index: int) -> str:
    """The run's colour: the same as in the figures of all runs, where runs without records take theirs."""
    return runs[index].colour or f"C{index}"


def _first_repetition(run: DeviceRun) -> int:
    return run.data.repetitions[0] if run.data.repetitions else 0


def _repetition_note(runs: Sequence[DeviceRun]) -> str:
    repeated = any(len(run.data.repetitions) > 1 for run in runs)
    return " (first repetition)" if repeated else ""


def _per_round_note(runs: Sequence[DeviceRun]) -> str | None:
    return "per round: mean over repetitions" if any(len(run.data.repetitions) > 1 for run in runs) else None


def _pooled_note(runs: Sequence[DeviceRun]) -> str | None:
    if any(len(run.data.repetitions) > 1 for run in runs):
        return "pooled over repetitions: one value per device and repetition"
    return None


# --- Fairness ---


def participation(runs: Sequence[DeviceRun], figure: Figure) -> None:
    """Share of devices selected k times for fit, and the Lorenz curve of the selections (with Jain and Gini)."""
    histogram, lorenz = figure.subplots(1, 2)
    notes = []
    for index, run in enumerate(runs):
        figures = [fairness(run.data.of_repetition(rep).records, run.data.devices(rep)) for rep in run.data.repetitions]
        counts = np.concatenate([f.counts for f in figures]) if figures else np.zeros(0, np.int64)
        if not len(counts):
            continue
        frequencies = np.bincount(counts)
        k = np.arange(len(frequencies))
        # A step of one point (no device ever selected: all at k = 0) draws nothing; a marker shows it.
        marker = "o" if len(k) == 1 else None
        histogram.step(
            k, frequencies / len(counts), where="mid", color=_colour(runs, index), linewidth=1.6, marker=marker
        )
        ordered = np.sort(counts)
        if ordered.sum():  # without any selection there is no share to draw
            share = np.concatenate([[0.0], np.cumsum(ordered) / ordered.sum()])
            lorenz.plot(np.linspace(0, 1, len(ordered) + 1), share, color=_colour(runs, index), linewidth=1.6)
        notes.append((index, _fairness_note(figures)))
    lorenz.plot([0, 1], [0, 1], color="0.5", linestyle=":", linewidth=1)
    for offset, (index, text) in enumerate(notes):
        lorenz.text(0.03, 0.95 - 0.07 * offset, text, color=_colour(runs, index), transform=lorenz.transAxes, va="top")
    histogram.set_xlabel("times selected for fit (k)")
    histogram.set_ylabel("share of devices selected k times")
    histogram.yaxis.set_major_formatter(PercentFormatter(1.0))
    histogram.xaxis.set_major_locator(MaxNLocator(integer=True))
    # At least k = 0 and 1 in view: a lone point at k = 0 would otherwise get a range too narrow for an integer tick.
    histogram.set_xlim(-0.5, max(histogram.get_xlim()[1], 1.5))
    histogram.set_ylim(bottom=0)
    histogram.set_title("Participation histogram (never-selected devices at k = 0)")
    lorenz.set_xlabel("share of devices, least selected first")
    lorenz.set_ylabel("share of all fit selections")
    lorenz.xaxis.set_major_formatter(PercentFormatter(1.0))
    lorenz.yaxis.set_major_formatter(PercentFormatter(1.0))
    lorenz.set_title("Lorenz curve (dotted: perfectly equal)")
    figure.suptitle("Fairness of the fit selections over all devices")


def _fairness_note(figures: Sequence[Fairness]) -> str:
    """Mean Jain and Gini over the repetitions that selected any device (they are undefined without selections),
    and the mean never-selected devices."""
    never = np.mean([len(f.never_selected) for f in figures])
    shared = [f for f in figures if not (np.isnan(f.jain) or np.isnan(f.gini))]
    if not shared:
        return f"no fit selection  never {never:,.0f}"
    jain, gini = np.mean([f.jain for f in shared]), np.mean([f.gini for f in shared])
    return f"Jain {jain:.3f}  Gini {gini:.3f}  never {never:,.0f}"


def failures(runs: Sequence[DeviceRun], figure: Figure) -> None:
    """Failed jobs per reason, fit and eval, as bars per run (mean per repetition)."""
    panels = figure.subplots(1, len(PHASES), sharey=True)
    width = 0.8 / max(len(runs), 1)
    for index, run in enumerate(runs):
        per_rep = [failures_by_reason(run.data.of_repetition(rep).records) for rep in run.data.repetitions]
        for axes, phase in zip(panels, PHASES, strict=True):
            means = [np.mean([c[phase].get(reason, 0) for c in per_rep]) if per_rep else 0 for reason in REASONS]
            x = np.arange(len(REASONS)) + (index - (len(runs) - 1) / 2) * width
            axes.bar(x, means, width, color=_colour(runs, index))
    for axes, phase in zip(panels, PHASES, strict=True):
        axes.set_xticks(np.arange(len(REASONS)), list(REASONS))
        axes.set_xlabel("failure reason")
        axes.set_title(f"{phase} jobs")
        axes.yaxis.set_major_formatter(THOUSANDS)
    panels[0].set_ylabel("failed jobs per repetition")
    figure.suptitle("Failures by reason" + (" (mean over repetitions)" if _per_round_note(runs) else ""))


# --- Per device ---


def _all_stats(run: DeviceRun) -> list[DeviceStats]:
    return _stats(run.data)


@functools.lru_cache(maxsize=16)
def _stats(data: DeviceRecords) -> list[DeviceStats]:
    """Every repetition's per-device figures, computed once for the several figures that draw them."""
    return [device_stats(data, rep) for rep in data.repetitions]


def _pooled(stats: Sequence[DeviceStats], value: Callable[[DeviceStats], np.ndarray]) -> np.ndarray:
    return np.concatenate([value(stat) for stat in stats]) if stats else np.zeros(0)


def _ranked(
    runs: Sequence[DeviceRun],
    panels: Sequence[Axes],
    charts: Sequence[tuple[str, str, Callable[[DeviceStats], np.ndarray]]],
) -> None:
    """Per (title, y label, value): every device's value, highest first, against its rank as a share of devices.

    Runs of any population size overlay; the curve is the distribution, its area the total.
    """
    stats = [_all_stats(run) for run in runs]
    for axes, (title, label, value) in zip(panels, charts, strict=False):
        for index, per_rep in enumerate(stats):
            pooled = _pooled(per_rep, value)
            ordered = np.sort(pooled[np.isfinite(pooled)])[::-1]
            if len(ordered):
                rank = (np.arange(len(ordered)) + 0.5) / len(ordered)
                axes.plot(rank, ordered, color=_colour(runs, index), linewidth=1.6)
        axes.set_title(title)
        axes.set_ylabel(label)
        axes.set_xlabel("devices, ranked from highest to lowest")
        axes.xaxis.set_major_formatter(PercentFormatter(1.0))
        axes.yaxis.set_major_formatter(THOUSANDS)
        axes.set_ylim(bottom=0)


def device_activity(runs: Sequence[DeviceRun], figure: Figure) -> None:
    """Per device: rounds available, fit selections, failed jobs and energy spent, ranked."""
    charts = [
        ("Rounds available", "rounds", lambda s: s.rounds_available),
        ("Times selected for fit", "fit jobs", lambda s: s.fit_selected),
        ("Failed jobs (fit and eval)", "jobs", lambda s: s.failed),
        ("Energy spent by completed jobs", "energy (mWh)", lambda s: s.energy),
    ]
    _ranked(runs, figure.subplots(2, 2).ravel(), charts)
    figure.suptitle("Per device: availability, selections, failures, energy (each device's value, ranked)")


def _by_quantile(axes: Axes, x: np.ndarray, y: np.ndarray, colour: str, bins: int = 20) -> None:
    """Mean y of the devices in each of `bins` quantile bins of x, at the bin's mean x."""
    if not len(x):
        return
    order = np.argsort(x)
    groups = np.array_split(order, min(bins, len(x)))
    axes.plot([x[g].mean() for g in groups], [y[g].mean() for g in groups], "o-", color=colour, markersize=3)


def device_traits(runs: Sequence[DeviceRun], figure: Figure) -> None:
    """The population's data size, computation and network speed (ranked), and fit selections by speed."""
    panels = figure.subplots(2, 2).ravel()
    charts = [
        ("Data size", "examples", lambda s: s.data_size),
        ("Computation speed", "local iterations per second", lambda s: s.ips),
        ("Mean network speed", "parameters per second", lambda s: s.net_speed),
    ]
    _ranked(runs, panels[:3], charts)
    speed = panels[3]
    for index, run in enumerate(runs):
        stats = _all_stats(run)
        _by_quantile(
            speed, _pooled(stats, lambda s: s.ips), _pooled(stats, lambda s: s.fit_selected), _colour(runs, index)
        )
    speed.set_title("Fit selections by computation speed (20 quantile bins)")
    speed.set_xlabel("computation speed (local iterations per second)")
    speed.set_ylabel("mean times selected for fit")
    speed.set_ylim(bottom=0)
    figure.suptitle("The population: data and speed of each device, ranked; who gets selected")


def _heat_map(
    axes: Axes, shares: np.ndarray, cmap: str, extent: tuple[float, float, float, float], top: float = 1.0
) -> AxesImage:
    """Shares in [0, top], row 0 at the bottom, one cell per value (no smoothing)."""
    return axes.imshow(
        shares, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=top, origin="lower", extent=extent
    )


def label_distribution(runs: Sequence[DeviceRun], figure: Figure) -> None:
    """Per run a heat map: each device's share of examples per class (every k-th device when there are many)."""
    panels = figure.subplots(len(runs), 1, squeeze=False).ravel()
    image = None
    for axes, run in zip(panels, runs, strict=True):
        stat = _all_stats(run)[0]
        # Sampled, not summed: a sum of 50 skewed devices looks uniform and hides what the figure is for.
        step = bin_size(len(stat.devices), MAX_DEVICE_POINTS)
        devices, labels = stat.devices[::step], stat.label_counts[::step].astype(float)
        if labels.shape[1] == 0:  # a regression dataset: its devices hold targets, not classes
            axes.set_title(run.label, loc="left", fontsize="medium")
            axes.text(0.5, 0.5, "no classes: a regression target", ha="center", va="center", transform=axes.transAxes)
            axes.set_axis_off()
            continue
        totals = labels.sum(axis=1, keepdims=True)
        shares = np.divide(labels, totals, out=np.zeros_like(labels), where=totals > 0)
        image = _heat_map(axes, shares.T, "viridis", (-0.5, len(shares) - 0.5, -0.5, shares.shape[1] - 0.5))
        sampled = f": {len(devices):,} of {len(stat.devices):,} devices (every {step:,}th id)" if step > 1 else ""
        axes.set_title(run.label + sampled, loc="left", fontsize="medium")
        axes.set_ylabel("class")
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _, ids=devices: _id_at(ids, x)))
        axes.set_xlabel("device id")
    if image is not None:
        figure.colorbar(image, ax=list(panels), label="share of the device's examples", shrink=0.8)
    figure.suptitle("Label distribution per device" + _repetition_note(runs))


def _id_at(ids: np.ndarray, x: float) -> str:
    """The device id of heat map column x (sampled columns are not ids)."""
    column = round(x)
    return f"{ids[column]:,}" if 0 <= column < len(ids) else ""


def selections(runs: Sequence[DeviceRun], figure: Figure) -> None:
    """Per run the device x round matrix of fit selections, binned at scale (the title says how)."""
    panels = figure.subplots(len(runs), 1, squeeze=False).ravel()
    matrices = []
    for run in runs:
        rep = _first_repetition(run)
        records, devices = run.data.of_repetition(rep).records, run.data.devices(rep)
        order = np.argsort(participation_of(records, devices), kind="stable")
        matrices.append(selection_matrix(records, devices, run.data.num_rounds, order=order))
    # One colour scale for all panels, up to the largest fraction: binned cells of a 10 % selection stay visible.
    top = max((float(matrix.fraction.max()) for matrix in matrices if matrix.fraction.size), default=1.0) or 1.0
    image = None
    for axes, run, matrix in zip(panels, runs, matrices, strict=True):
        extent = (0.5, matrix.round_edges[-1] + 0.5, -0.5, matrix.device_edges[-1] - 0.5)
        image = _heat_map(axes, matrix.fraction, "Greys", extent, top)
        axes.set_title(f"{run.label}: {matrix.describe()}", loc="left", fontsize="medium")
        axes.set_ylabel("devices by times\nselected (most on top)")
        axes.set_xlabel("round")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    if image is not None:
        binned = any(matrix.binned for matrix in matrices)
        figure.colorbar(image, ax=list(panels), label="fraction selected" if binned else "selected", shrink=0.8)
    figure.suptitle("Fit selections per device and round" + _repetition_note(runs))


# --- Time and energy ---

_PARTS = [
    ("fit computation", "#4c72b0"),
    ("fit download", "#dd8452"),
    ("fit upload", "#c44e52"),
    ("eval computation", "#8fb0de"),
    ("eval communication", "#f2c08f"),
]


def round_time_split(runs: Sequence[DeviceRun], figure: Figure) -> None:
    """Per run, each round's time as the slowest completed job's computation, download and upload, per phase."""
    panels = figure.subplots(len(runs), 1, squeeze=False, sharex=True, sharey=True).ravel()
    split = [round_times(run.data.records) for run in runs]
    largest = max((float(np.max(s.time)) for s in split if len(s.time)), default=0.0)
    divisor, unit = readable_unit(largest, TIME_UNITS)
    for axes, run, times in zip(panels, runs, split, strict=True):
        rounds = int(times.round.max()) + 1 if len(times.round) else 0
        parts = [
            times.fit.computation,
            times.fit.download,
            times.fit.upload,
            times.eval.computation,
            times.eval.download + times.eval.upload,
        ]
        means = [mean_by_round(times.round, part, rounds) / divisor for part in parts]
        x = np.arange(1, rounds + 1)
        colours = [colour for _, colour in _PARTS]
        if rounds <= BAR_ROUNDS:
            bottom = np.zeros(rounds)
            for mean, colour in zip(means, colours, strict=True):
                axes.bar(x, mean, 0.85, bottom=bottom, color=colour)
                bottom += mean
        else:
            axes.stackplot(x, *means, colors=colours, linewidth=0)
        share = times.communication_share()
        axes.set_title(f"{run.label}: communication {share:.0%} of the rounds' time", loc="left", fontsize="medium")
        axes.set_ylabel(f"round time ({unit})")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    panels[-1].set_xlabel("round")
    figure.legend(
        [Patch(color=colour) for _, colour in _PARTS],
        [name for name, _ in _PARTS],
        loc="outside right upper",
        title="slowest completed job",
        fontsize="small",
    )
    mean = " (mean over repetitions)" if _per_round_note(runs) else ""
    figure.suptitle("Round time split into computation and communication" + mean)


def _hist_overlay(axes: Axes, runs: Sequence[DeviceRun], samples: Sequence[np.ndarray], divisor: float) -> None:
    finite = [s[np.isfinite(s)] / divisor for s in samples]
    top = max((float(s.max()) for s in finite if len(s)), default=1.0) or 1.0
    bins = np.linspace(0, top, 41)
    for index, sample in enumerate(finite):
        if len(sample):
            axes.hist(sample, bins=bins, histtype="step", color=_colour(runs, index), linewidth=1.6)


def device_time(runs: Sequence[DeviceRun], figure: Figure) -> None:
    """Distributions over devices of their total computation and communication time."""
    computation, communication = figure.subplots(1, 2, sharey=True)
    totals = []
    for run in runs:
        per_rep = [
            device_times(run.data.of_repetition(rep).records, run.data.devices(rep)) for rep in run.data.repetitions
        ]
        totals.append(
            (
                np.concatenate([t.computation for t in per_rep]) if per_rep else np.zeros(0),
                np.concatenate([t.communication for t in per_rep]) if per_rep else np.zeros(0),
            )
        )
    largest = max((float(np.max(np.concatenate(t))) for t in totals if len(t[0])), default=0.0)
    divisor, unit = readable_unit(largest, TIME_UNITS)
    _hist_overlay(computation, runs, [t[0] for t in totals], divisor)
    _hist_overlay(communication, runs, [t[1] for t in totals], divisor)
    computation.set_title("Computation")
    communication.set_title("Communication (download + upload)")
    for axes in (computation, communication):
        axes.set_xlabel(f"total time of the device's completed jobs ({unit})")
    computation.set_ylabel("devices")
    figure.suptitle("Time each device spent over the run, computing and communicating")


def consumption(runs: Sequence[DeviceRun], figure: Figure) -> None:
    """Per round: energy, computation and communication consumed by the completed jobs (both phases)."""
    energy, computation, communication = figure.subplots(1, 3, sharex=True)
    per_run = [round_consumption(run.data.records) for run in runs]
    energy_divisor, energy_unit = readable_unit(
        max((float(c.energy.max()) for c in per_run if len(c.energy)), default=0.0), ENERGY_UNITS
    )
    for index, used in enumerate(per_run):
        rounds = int(used.round.max()) + 1 if len(used.round) else 0
        x = np.arange(1, rounds + 1)
        energy.plot(x, mean_by_round(used.round, used.energy, rounds) / energy_divisor, color=_colour(runs, index))
        computation.plot(x, mean_by_round(used.round, used.computation, rounds), color=_colour(runs, index))
        communication.plot(x, mean_by_round(used.round, used.communication, rounds), color=_colour(runs, index))
    energy.set_ylabel(f"energy ({energy_unit})")
    computation.set_ylabel("computation (device-seconds)")
    communication.set_ylabel("communication (device-seconds)")
    for axes, title in ((energy, "Energy"), (computation, "Computation"), (communication, "Network")):
        axes.set_title(title)
        axes.set_xlabel("round")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.yaxis.set_major_formatter(THOUSANDS)
        axes.set_ylim(bottom=0)
    figure.suptitle("Consumption per round: sums over the completed jobs of both phases")


def work(runs: Sequence[DeviceRun], figure: Figure) -> None:
    """Per quantity, the distribution over fit jobs of the configured (dashed) and executed (solid) values."""
    panels = figure.subplots(1, len(QUANTITIES))
    comparisons = [configured_vs_executed(run.data.records) for run in runs]
    for axes, quantity in zip(panels, QUANTITIES, strict=True):
        for index, by_quantity in enumerate(comparisons):
            comparison = by_quantity[quantity]
            for sample, style in ((comparison.configured, "--"), (comparison.executed, "-")):
                if len(sample):  # one step per distinct value: a million jobs draw as fast as ten
                    distinct, counts = np.unique(sample, return_counts=True)
                    share = np.concatenate([[0.0], np.cumsum(counts) / len(sample)])
                    axes.step(
                        np.concatenate([distinct[:1], distinct]),
                        share,
                        style,
                        where="post",
                        color=_colour(runs, index),
                        linewidth=1.6,
                    )
            axes.text(
                0.03,
                0.95 - 0.07 * index,
                f"{comparison.changed:.0%} of jobs changed",
                color=_colour(runs, index),
                transform=axes.transAxes,
                va="top",
                fontsize="small",
            )
        axes.set_title(quantity.replace("_", " "))
        axes.set_xlabel(f"{quantity.replace('_', ' ')} per fit job")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.xaxis.set_major_formatter(THOUSANDS)
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        axes.set_ylim(0, 1.05)
    panels[0].set_ylabel("share of fit jobs with at most x")
    panels[-1].legend(
        [Line2D([], [], color="0.3", linestyle="--"), Line2D([], [], color="0.3")],
        ["configured", "executed"],
        loc="lower right",
        fontsize="small",
    )
    figure.suptitle("Configured vs executed work of the fit jobs (update strategies may change it)")


#: Device figure kind -> (drawing function, figure size in inches, whether it has a panel per run).
DevicePlot = Callable[[Sequence[DeviceRun], Figure], None]
DEVICE_PLOTS: dict[str, tuple[DevicePlot, tuple[float, float], bool]] = {
    "participation": (participation, (11.0, 4.4), False),
    "failures": (failures, (10.0, 4.0), False),
    "device_activity": (device_activity, (12.0, 7.0), False),
    "device_traits": (device_traits, (12.0, 7.0), False),
    "label_distribution": (label_distribution, (12.0, 2.0), True),
    "selection_matrix": (selections, (12.0, 2.6), True),
    "round_time": (round_time_split, (12.0, 2.4), True),
    "device_time": (device_time, (11.0, 4.2), False),
    "consumption": (consumption, (13.0, 4.2), False),
    "work": (work, (13.0, 4.6), False),
}

#: Notes of the figures that do not follow the general rule of _per_round_note.
_NOTES: dict[str, Callable[[Sequence[DeviceRun]], str | None]] = {
    "participation": _pooled_note,
    "device_activity": _pooled_note,
    "device_traits": _pooled_note,
    "device_time": _pooled_note,
    "work": lambda runs: "pooled over repetitions: one value per job" if _pooled_note(runs) else None,
    "failures": lambda runs: None,
}


def device_plot(kind: str, runs: Sequence[DeviceRun]) -> Figure:
    """The figure of one device figure kind, with a legend naming every run."""
    draw, (width, height), per_run = DEVICE_PLOTS[kind]
    figure = Figure(figsize=(width, height * len(runs) + 1.2 if per_run else height), layout="constrained")
    draw(runs, figure)
    if per_run:  # each panel's title names its run: a colour legend would name colours the figure does not use
        return figure
    note = _NOTES.get(kind, _per_round_note)(runs)
    return with_run_legend(
        figure, [run.label for run in runs], note, [_colour(runs, index) for index in range(len(runs))]
    )
