"""Speed-up of `feles run` from 1 to 2 workers on the same workload, pinned to the same 2 cores.

Each run is `python -m feles run SPEC --workers N` timed end to end (1 and 2 workers alternate, best of
--repeat kept); the results files of both must be identical (wall-clock fields aside). The orchestrator's
share that does not parallelise (the test-split evaluation after every round) is measured apart to show
the ceiling it puts on the speed-up (Amdahl).

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

import torch
import yaml
from report import header, verdict

from feles.config import load_spec
from feles.data import DataRequest, default_model_for, load_dataset, resolve_data_dir
from feles.devices import DevicePopulation
from feles.evaluation import evaluate
from feles.models import build_model

ROOT = Path(__file__).resolve().parents[1]
TARGET_SPEED_UP = 1.7
#: `feles run`'s default torch threads of the orchestrator's test-split evaluation.
ORCHESTRATOR_THREADS = 2


def run(spec: Path, workers: int, cores: list[int] | None, data: list[str]) -> tuple[float, list[dict[str, Any]]]:
    """Wall seconds of one `feles run` and its round records without wall-clock fields."""
    command = [sys.executable, "-m", "feles", "run", str(spec), "--workers", str(workers), *data]

    def pin() -> None:
        if cores is not None:
            os.sched_setaffinity(0, cores)  # inherited by the orchestrator and the workers

    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=pin)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-3000:]}")
    document = json.loads((spec.parent / "out" / "results.json").read_text())
    return seconds, [{k: v for k, v in row.items() if k != "wall_time"} for row in document["rounds"]]


def test_evaluation_seconds(spec_path: Path, data_dir: str | None, repeat: int = 3) -> float:
    """Seconds of one test-split evaluation of the spec's model, as the orchestrator runs it after each round."""
    spec = load_spec(spec_path)
    population = DevicePopulation.draw(spec, 0)
    request = DataRequest(
        spec.simulation.seed,
        0,
        population.data_sizes,
        resolve_data_dir(data_dir, spec.simulation.data_dir),
        spec.simulation.dataset_params,
    )
    dataset = load_dataset(spec.simulation.dataset, request)
    model = build_model(spec.simulation.model or default_model_for(spec.simulation.dataset), dataset.input_shape,
                        dataset.num_classes)  # fmt: skip
    torch.set_num_threads(ORCHESTRATOR_THREADS)
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        evaluate(model, dataset.test.x, dataset.test.y)
        timings.append(time.perf_counter() - started)
    return min(timings)


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
        times: dict[int, list[float]] = {1: [], 2: []}
        rounds: dict[int, list[dict[str, Any]]] = {}
        for attempt in range(args.repeat):
            for workers in (1, 2):
                seconds, rounds[workers] = run(spec, workers, cores, data)
                times[workers].append(seconds)
                print(f"  run {attempt + 1}, {workers} worker(s): {seconds:.1f} s")
        evaluation = test_evaluation_seconds(spec, args.data_dir)
    one, two = min(times[1]), min(times[2])
    num_rounds = len(rounds[1])
    print(f"identical results with 1 and 2 workers: {'yes' if rounds[1] == rounds[2] else 'NO'}")
    print(f"best of {args.repeat}: 1 worker {one:.1f} s, 2 workers {two:.1f} s")
    serial = evaluation * num_rounds
    ceiling = one / (serial + (one - serial) / 2)
    print(
        f"serial part: test-split evaluation {evaluation:.2f} s x {num_rounds} rounds = {serial:.1f} s of the 1-worker"
        f" run; if everything else halved, 2 workers would be at most {ceiling:.2f}x faster"
    )
    print(verdict("speed-up 2 workers vs 1", one / two, TARGET_SPEED_UP, higher_is_better=True, unit="x"))


if __name__ == "__main__":
    main()
