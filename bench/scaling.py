"""Speed-up of `feles run` from 1 to 2 workers on the same workload, pinned to the same 2 cores.

Each run is `python -m feles run SPEC --workers N` timed end to end (1 and 2 workers alternate, best of
--repeat kept); the results files of both must be identical (wall-clock fields aside). The time spent
outside rounds (process start-up, dataset loading, shutdown) does not shrink with more workers and is
printed apart, with the speed-up of the rounds alone.

Usage: python bench/scaling.py [--config examples/quickstart.yaml] [--repeat 2] [--cores 2] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from report import header, verdict

ROOT = Path(__file__).resolve().parents[1]
TARGET_SPEED_UP = 1.7


def run(
    spec: Path, workers: int, cores: list[int] | None, data: list[str]
) -> tuple[float, float, list[dict[str, Any]]]:
    """Wall seconds of one `feles run`, of its rounds, and its round records without wall-clock fields."""
    command = [sys.executable, "-m", "feles", "run", str(spec), "--workers", str(workers), *data]

    def pin() -> None:
        if cores is not None:
            os.sched_setaffinity(0, cores)  # inherited by the orchestrator and the workers

    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=pin)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-3000:]}")
    rounds = json.loads((spec.parent / "out" / "results.json").read_text())["rounds"]
    in_rounds = sum(row["wall_time"] for row in rounds)
    return seconds, in_rounds, [{k: v for k, v in row.items() if k != "wall_time"} for row in rounds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "quickstart.yaml")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2, help="Pin every process to the first N cores (0: no pinning).")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    available = sorted(os.sched_getaffinity(0))
    cores = available[: args.cores] if args.cores else None
    header("scaling: feles run with 1 and 2 workers")
    print(f"cores used: {cores if cores is not None else 'all'}")
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    with tempfile.TemporaryDirectory(prefix="feles-scaling-") as folder:
        document = yaml.safe_load(args.config.read_text())
        document.setdefault("simulation", {})["output_folder"] = str(Path(folder) / "out")
        spec = Path(folder) / "spec.yaml"
        spec.write_text(yaml.safe_dump(document))
        print(f"workload: {args.config} (output folder moved to a temporary folder)")
        print(f"runs: {shlex.join([sys.executable, '-m', 'feles', 'run', str(spec), '--workers', 'N', *data])}")
        times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
        rounds: dict[int, list[dict[str, Any]]] = {}
        for attempt in range(args.repeat):
            for workers in (1, 2):
                seconds, in_rounds, rounds[workers] = run(spec, workers, cores, data)
                times[workers].append((seconds, in_rounds))
                print(f"  run {attempt + 1}, {workers} worker(s): {seconds:.1f} s ({in_rounds:.1f} s in rounds)")
    (one, one_rounds), (two, two_rounds) = min(times[1]), min(times[2])
    print(f"identical results with 1 and 2 workers: {'yes' if rounds[1] == rounds[2] else 'NO'}")
    print(f"best of {args.repeat}: 1 worker {one:.1f} s, 2 workers {two:.1f} s")
    print(
        f"outside rounds (start-up, data loading, shutdown): {one - one_rounds:.1f} s and {two - two_rounds:.1f} s;"
        f" speed-up of the rounds alone {one_rounds / two_rounds:.2f}x"
    )
    print(verdict("speed-up 2 workers vs 1", one / two, TARGET_SPEED_UP, higher_is_better=True, unit="x"))


if __name__ == "__main__":
    main()
