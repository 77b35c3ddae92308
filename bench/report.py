"""How the benchmarks report: the machine, the command that reproduces a figure, and a target check."""

from __future__ import annotations

import compileall
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

import feles


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
    compile_feles()


def compile_feles() -> None:
    """Write FELES's bytecode if it is missing, so that every process a benchmark starts reads it as an
    installed FELES does (pip compiles at install; an editable install writes it on its first run).

    Where PYTHONDONTWRITEBYTECODE is set (as on the machines FELES is developed on), an editable install
    never writes it, and every orchestrator and worker compiled FELES's modules again: ~145 ms of each start.
    """
    package = Path(feles.__file__).parent
    if not compileall.compile_dir(package, quiet=1):
        print(f"bytecode: could not compile {package}; start-ups include compiling it")


def verdict(name: str, value: float, target: float, higher_is_better: bool, unit: str = "") -> str:
    """`name: value (target >= t): met` or `... MISSED`."""
    met = value >= target if higher_is_better else value <= target
    relation = ">=" if higher_is_better else "<="
    return f"{name}: {value:,.2f}{unit} (target {relation} {target:g}{unit}): {'met' if met else 'MISSED'}"
