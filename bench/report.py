"""How the benchmarks report: the machine, the command that reproduces a figure, and a target check."""

from __future__ import annotations

import os
import platform
import shlex
import sys

import torch


def machine() -> str:
    """Cores, CPU model, Python and torch versions, and the load when the benchmark started."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{cores} cores ({model}), {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"torch {torch.__version__}, load average {load}"
    )


def header(title: str) -> None:
    print(f"== {title}")
    print(f"machine: {machine()}")
    print(f"command: {shlex.join([sys.executable.rsplit('/', 1)[-1], *sys.argv])}")


def verdict(name: str, value: float, target: float, higher_is_better: bool, unit: str = "") -> str:
    """`name: value (target >= t): met` or `... MISSED`."""
    met = value >= target if higher_is_better else value <= target
    relation = ">=" if higher_is_better else "<="
    return f"{name}: {value:,.2f}{unit} (target {relation} {target:g}{unit}): {'met' if met else 'MISSED'}"
