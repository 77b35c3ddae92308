"""How long `feles analyze` takes on large device records: synthetic runs, each figure and the report timed.

Writes `--runs` synthetic runs of `--devices` devices x `--rounds` rounds (records, availability and
population parts, as the orchestrator writes them; the generator of the analyzer's tests) and times
loading, every figure, the comparison table and the HTML report. Usage:
python bench/analyze_scale.py [--devices 10000] [--rounds 1000] [--runs 3] [--folder DIR] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from feles.analysis.comparison import device_summary
from feles.analysis.device_plots import DEVICE_PLOTS, device_plot
from feles.analysis.device_records import DeviceRun, load_device_records
from feles.analysis.loading import load_runs
from feles.analysis.plots import png_bytes
from feles.analysis.report import ReportInput, write_report
from feles.analysis.summary import summarise
from tests.unit.device_records_documents import write_run, write_synthetic

#: (name, selection bias towards fast devices, adaptive epochs) of each synthetic run.
RUNS = [("random", 0.0, False), ("fast-first", 1.5, False), ("adaptive", 0.0, True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3, choices=range(1, len(RUNS) + 1))
    parser.add_argument("--folder", type=Path, help="where the runs and the report go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args()
    folder = options.folder or Path(tempfile.mkdtemp(prefix="feles-analyze-scale-"))
    try:
        started = time.perf_counter()
        for index, (name, prefer_fast, adapt) in enumerate(RUNS[: options.runs]):
            accuracies = [[0.5] * options.rounds]
            write_run(folder / name, None, accuracies, num_devices=options.devices)
            write_synthetic(folder / name, options.devices, options.rounds, 1, 0.1, prefer_fast, adapt, index)
        print(
            f"wrote {options.runs} runs of {options.devices:,} devices x {options.rounds:,} rounds "
            f"in {time.perf_counter() - started:.1f} s"
        )
        timings = measure(folder, options.runs)
        for name, seconds in timings.items():
            print(f"{name:>22}: {seconds:6.2f} s")
        print(f"{'total':>22}: {sum(timings.values()):6.2f} s; report: {folder / 'report.html'}")
    finally:
        if options.folder is None and not options.keep:
            shutil.rmtree(folder)


def measure(folder: Path, count: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    runs = load_runs([folder])
    device_runs = [DeviceRun(run, data, f"C{i}") for i, run in enumerate(runs) if (data := load_device_records(run))]
    assert len(device_runs) == count
    lap("load")
    figures = {}
    for kind in DEVICE_PLOTS:
        figures[kind] = png_bytes(device_plot(kind, device_runs))
        lap(kind)
    devices = [device_summary(run) for run in device_runs]
    lap("comparison table")
    write_report(folder / "report.html", ReportInput(runs, [summarise(run) for run in runs], devices, figures))
    lap("report")
    return timings


if __name__ == "__main__":
    main()
