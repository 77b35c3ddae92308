"""GPU check: the same jobs on the CPU and on CUDA; the speed-up and the largest difference in the results.

Builds a worker's state for a small simulation (Fashion-MNIST when its files are there, else the bundled digits)
and runs, through the worker's own `run_job`, N fit jobs (1 epoch, batch 32), N eval jobs and one test job
of the whole test split, for each model and algorithm (FedAvg, FedProx): first on the CPU, then on CUDA
(after a warm-up), then on CUDA again in reverse order. It also trains the fit jobs stacked on CUDA
(feles.worker.job_groups.run_jobs). Then whole simulations through `feles run` (mlp_small, FedAvg, 40 devices,
--rounds rounds): on the CPU with 1 worker, on CUDA with 1 worker and on CUDA with 2 forked workers; the two
CUDA runs must agree in every figure of every round and in the final model, bit for bit. It prints the seconds
of each side, the speed-up over the CPU and the largest differences, and exits

  0  every job's difference within the tolerances below, CUDA twice gave the same bits, and the CUDA runs with
     1 and 2 workers are identical;
  1  a difference over its tolerance, two CUDA runs of the same jobs differ (non-deterministic kernels), the
     CUDA runs with 1 and 2 workers differ, or a run failed;
  2  no CUDA GPU (torch sees none): nothing to check.

Tolerances (docs/accelerators.md), absolute: a job's largest weight difference 1e-3 (a ReLU or max-pool choice
that flips moves a few weights by up to about 2e-4) and the median over the jobs of it 1e-5 (most jobs differ
by about 1e-6; TF32 lifts them all); losses 1e-4; accuracy 0.002 (an example whose two best logits nearly tie
may flip). `--tf32` turns TF32 on, the negative control: the check must then fail. `--cpu-only` is the
self-check of this script on machines without a GPU:
the "accelerated" side is a second CPU worker state, so the differences must be exactly 0. The whole runs'
CPU-vs-CUDA differences are printed, not checked: SGD carries the last bits of every round into the next, so
they grow with the rounds.

Usage: python bench/gpu_check.py [--jobs 20] [--models cnn mlp_small] [--algorithms fedavg fedprox]
                                 [--dataset fashion_mnist] [--rounds 5] [--cpu-only] [--tf32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from feles.algorithms import build_client
from feles.config import SimulationSpec
from feles.data.fashion_mnist import DEFAULT_DIR, FILES
from feles.protocol import ExampleRange, Job, JobResult, Phase
from feles.strategies import LOCAL_DATA_OPTIMIZERS
from feles.worker.accelerator import prepare_device, resolve_device
from feles.worker.job_groups import run_jobs
from feles.worker.state import WorkerState
from feles.worker.trainer import run_job

#: A job's largest weight difference: most jobs differ by about 1e-6, but a job in which a ReLU or a max-pool
#: choice flips (an input within float error of the kink) differs by up to about 2e-4 where that unit's
#: gradient goes (measured on an H200: one cnn job in 20; docs/accelerators.md).
WEIGHT_TOLERANCE = 1e-3
#: The median over the jobs of their largest weight difference: what every job shows (TF32 would lift it).
TYPICAL_WEIGHT_TOLERANCE = 1e-5
LOSS_TOLERANCE = 1e-4
ACCURACY_TOLERANCE = 0.002
EXAMPLES, BATCH = 128, 32

Output = tuple[JobResult, dict[str, torch.Tensor]]


@dataclass
class Differences:
    weights: float = 0.0
    loss: float = 0.0
    accuracy: float = 0.0
    where: dict[str, str] = field(default_factory=dict)
    #: Each job's largest weight difference (jobs with weights: fit jobs).
    per_job: list[float] = field(default_factory=list)

    def add(self, job: Job, a: Output, b: Output) -> None:
        (ra, ta), (rb, tb) = a, b
        self._max("loss", abs(ra.loss - rb.loss), job)
        self._max("accuracy", abs((ra.metric or 0.0) - (rb.metric or 0.0)), job)
        if ta:
            self.per_job.append(max(float((tensor - tb[name]).abs().max()) for name, tensor in ta.items()))
            self._max("weights", self.per_job[-1], job)

    def _max(self, kind: str, value: float, job: Job) -> None:
        if value > getattr(self, kind):
            setattr(self, kind, value)
            self.where[kind] = job.id

    @property
    def typical(self) -> float:
        return statistics.median(self.per_job) if self.per_job else 0.0

    def within(self) -> bool:
        return (
            self.weights <= WEIGHT_TOLERANCE
            and self.typical <= TYPICAL_WEIGHT_TOLERANCE
            and self.loss <= LOSS_TOLERANCE
            and self.accuracy <= ACCURACY_TOLERANCE
        )

    def line(self) -> str:
        return (
            f"weights {self.weights:.2e} (<= {WEIGHT_TOLERANCE:g}), median job {self.typical:.2e} "
            f"(<= {TYPICAL_WEIGHT_TOLERANCE:g}), loss {self.loss:.2e} (<= {LOSS_TOLERANCE:g}), "
            f"accuracy {self.accuracy:.4f} (<= {ACCURACY_TOLERANCE:g})"
            + (f"; largest in {self.where}" if self.where else "")
        )


#: Each algorithm's parameters: FedProx's term reads the global weights on the device.
ALGORITHM_PARAMS = {"fedavg": {}, "fedprox": {"mu": 0.1}}


def worker_state(dataset: str, model: str, algorithm: str, device: torch.device) -> WorkerState:
    spec = SimulationSpec.model_validate(
        {
            "simulation": {"dataset": dataset, "model": model, "seed": 3},
            "algorithms": {
                "learning_rate": 0.05,
                "momentum": 0.9,
                "federated_algorithm": algorithm,
                "algorithm_params": ALGORITHM_PARAMS[algorithm],
            },
            "devices": {"num": 100},
            "data": {"num_examples_mean": 300, "num_examples_var": 100},
        }
    )
    sections = {Phase.FIT: spec.algorithms.fit, Phase.EVAL: spec.algorithms.eval}
    local_data = {phase: LOCAL_DATA_OPTIMIZERS.get(s.data)(s.data_params) for phase, s in sections.items()}
    return WorkerState("check", "check", spec, model, None, build_client(spec.algorithms), local_data, device=device)


def make_jobs(count: int, test_size: int) -> list[Job]:
    common = {"run_id": "check", "repetition": 0, "round": 0, "model_version": 0, "lease_seconds": 60}
    fit, evals = (
        [
            Job(
                id=f"{phase.value}-{d}",
                phase=phase,
                device=d,
                epochs=1,
                batch_size=BATCH,
                num_examples=EXAMPLES,
                seed=d,
                **common,
            )
            for d in range(count)
        ]
        for phase in (Phase.FIT, Phase.EVAL)
    )
    test = Job(
        id="test", phase=Phase.TEST, test_examples=ExampleRange(start=0, stop=test_size), epochs=1,
        batch_size=256, num_examples=test_size, seed=0, **common,
    )  # fmt: skip
    return [*fit, *evals, test]


def run_all(state: WorkerState, jobs: list[Job], weights: dict[str, torch.Tensor]) -> tuple[float, dict[str, Output]]:
    if state.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    outputs = {job.id: run_job(state, job, weights) for job in jobs}
    if state.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, outputs


def check_model(dataset: str, model: str, algorithm: str, count: int, accelerated: torch.device) -> bool:
    cpu_state = worker_state(dataset, model, algorithm, torch.device("cpu"))
    fast_state = worker_state(dataset, model, algorithm, accelerated)
    torch.manual_seed(0)
    weights = {name: tensor.detach().clone() for name, tensor in cpu_state.module(0).state_dict().items()}
    test_size = min(2000, len(cpu_state.repetition_data(0).dataset.test.y))
    jobs = make_jobs(count, test_size)
    run_all(fast_state, jobs[:1], weights)  # warm-up: CUDA context, kernels, data on the device
    cpu_seconds, cpu_outputs = run_all(cpu_state, jobs, weights)
    fast_seconds, fast_outputs = run_all(fast_state, jobs, weights)
    _, again = run_all(fast_state, list(reversed(jobs)), weights)
    differences = Differences()
    for job in jobs:
        differences.add(job, cpu_outputs[job.id], fast_outputs[job.id])
    repeatable = all(
        all(torch.equal(tensor, again[job.id][1][name]) for name, tensor in fast_outputs[job.id][1].items())
        and fast_outputs[job.id][0].loss == again[job.id][0].loss
        for job in jobs
    )
    fits = [job for job in jobs if job.phase is Phase.FIT]
    started = time.perf_counter()
    stacked = run_jobs(fast_state, fits, {job.id: weights for job in fits}, stack=len(fits))
    stacked_seconds = time.perf_counter() - started
    stacked_differences = Differences()
    for job, output in zip(fits, stacked, strict=True):
        stacked_differences.add(job, cpu_outputs[job.id], output)
    print(
        f"\n{model}, {algorithm}, on {dataset}: {count} fit + {count} eval jobs of {EXAMPLES} examples, "
        f"1 test job of {test_size}"
    )
    print(f"  cpu {cpu_seconds:.2f} s, {accelerated} {fast_seconds:.2f} s: speed-up {cpu_seconds / fast_seconds:.2f}x")
    print(f"  largest differences, {accelerated} vs cpu: {differences.line()}")
    print(f"  {accelerated} run twice (second in reverse order): {'identical bits' if repeatable else 'DIFFERENT'}")
    print(f"  {len(fits)} fit jobs stacked on {accelerated}: {stacked_seconds:.2f} s; vs cpu one by one: "
          f"{stacked_differences.line()}")  # fmt: skip
    exact = accelerated.type != "cpu" or differences.weights == differences.loss == differences.accuracy == 0.0
    if not exact:
        print("  the cpu-only self-check needs the very same results on both sides: it got differences")
    return differences.within() and stacked_differences.within() and repeatable and exact


@dataclass(frozen=True)
class Run:
    seconds: float
    rounds: list[dict]
    model: dict[str, torch.Tensor]


#: A round's figures that measure the host, not the simulation.
HOST_FIELDS = {"wall_time"}


def run_simulation(folder: Path, dataset: str, rounds: int, device: str, workers: int) -> Run | None:
    """`feles run` of a small simulation in `folder`: its seconds, its rounds and its final model; None if it failed."""
    spec = {
        "simulation": {"dataset": dataset, "model": "mlp_small", "num_rounds": rounds, "seed": 5,
                       "output_folder": str(folder)},
        "algorithms": {"learning_rate": 0.05, "momentum": 0.9, "fit": {"params": {"k": 0.25, "batch_size": 32}},
                       "eval": {"params": {"k": 0.25}}},
        "devices": {"num": 40, "p_available": 1.0, "p_fail": 0.0},
        "data": {"num_examples_mean": 300, "num_examples_var": 100, "non_iid_partitions": 0.5},
    }  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    command = [sys.executable, "-m", "feles", "run", str(folder / "spec.yaml"), "--workers", str(workers),
               "--device", device]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(f"  {' '.join(command[2:])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        for log in sorted((folder / "logs").glob("*.log")):
            print(f"  --- {log.name}:\n{log.read_text()[-2000:]}")
        return None
    rows = json.loads((folder / "results.json").read_text())["rounds"]
    checkpoint = load_file(folder / "checkpoint.safetensors")
    model = {name: tensor for name, tensor in checkpoint.items() if name.startswith("model/")}
    return Run(seconds, [{k: v for k, v in row.items() if k not in HOST_FIELDS} for row in rows], model)


def largest_round_differences(a: Run, b: Run) -> dict[str, float]:
    """Per figure, the largest absolute difference over the rounds; the final models' largest weight difference."""
    largest: dict[str, float] = {}
    for row_a, row_b in zip(a.rounds, b.rounds, strict=True):
        for name, value in row_a.items():
            if isinstance(value, float) and isinstance(row_b[name], float):
                largest[name] = max(largest.get(name, 0.0), abs(value - row_b[name]))
    largest["final model weights"] = max(float((t - b.model[n]).abs().max()) for n, t in a.model.items())
    return largest


def identical(a: Run, b: Run) -> bool:
    return a.rounds == b.rounds and all(torch.equal(t, b.model[n]) for n, t in a.model.items())


def check_runs(dataset: str, rounds: int, accelerated: torch.device) -> bool:
    """Whole simulations: CPU with 1 worker, the accelerator with 1 and with 2 workers."""
    device = accelerated.type
    print(f"\nwhole simulations, feles run: mlp_small, FedAvg, 40 devices, {rounds} rounds, on {dataset}")
    with tempfile.TemporaryDirectory(prefix="feles-gpu-check-") as scratch:
        folder = Path(scratch)
        cpu = run_simulation(folder / "cpu-1", dataset, rounds, "cpu", 1)
        one = run_simulation(folder / "accelerated-1", dataset, rounds, device, 1)
        two = run_simulation(folder / "accelerated-2", dataset, rounds, device, 2)
    if cpu is None or one is None or two is None:
        return False
    print(f"  cpu 1 worker {cpu.seconds:.1f} s, {device} 1 worker {one.seconds:.1f} s, "
          f"{device} 2 workers {two.seconds:.1f} s (launch to exit)")  # fmt: skip
    same = identical(one, two)
    print(f"  {device} with 1 and 2 workers: {'identical (every round, final model)' if same else 'DIFFERENT'}")
    if not same:
        print(f"    largest differences: {largest_round_differences(one, two)}")
    differences = largest_round_differences(cpu, one)
    print(f"  {device} vs cpu, largest over the rounds: "
          + (", ".join(f"{name} {value:.2e}" for name, value in differences.items() if value) or "none"))  # fmt: skip
    pairs = zip(cpu.rounds, one.rounds, strict=True)
    accuracies = " ".join(f"{a['test_accuracy']:.4f}/{b['test_accuracy']:.4f}" for a, b in pairs)
    print(f"  test accuracy by round, cpu/{device}: {accuracies}")
    if device == "cpu" and any(differences.values()):
        print("  the cpu-only self-check needs the very same results on both sides: it got differences")
        return False
    return same


def default_dataset() -> str:
    return "fashion_mnist" if all((DEFAULT_DIR / f"{name}.gz").exists() for name in FILES.values()) else "digits"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help="fit jobs (and as many eval jobs) per model")
    parser.add_argument("--models", nargs="+", default=["cnn", "mlp_small"])
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHM_PARAMS), choices=list(ALGORITHM_PARAMS))
    parser.add_argument("--dataset", default=None, help="default: fashion_mnist when its files are there, else digits")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the whole simulations (0: none)")
    parser.add_argument("--cpu-only", action="store_true", help="self-check on a machine without a GPU")
    parser.add_argument(
        "--tf32", action="store_true", help="turn TF32 on (as torch's default for convolutions): the check must fail"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a worker: the CPU side is one worker's speed
    if args.cpu_only:
        accelerated = torch.device("cpu")
    elif not torch.cuda.is_available():
        print(f"no CUDA GPU: torch {torch.__version__} sees none (no GPU, no driver, or a CPU-only build); "
              "nothing to check (--cpu-only runs the self-check)", file=sys.stderr)  # fmt: skip
        return 2
    else:
        accelerated = resolve_device("cuda")
        prepare_device(accelerated)
        if args.tf32:  # the negative control: what the tolerances are there to catch
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        print(f"GPU: {torch.cuda.get_device_name(accelerated)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    dataset = args.dataset or default_dataset()
    ok = [
        check_model(dataset, model, algorithm, args.jobs, accelerated)
        for model in args.models
        for algorithm in args.algorithms
    ]
    if args.rounds > 0:
        ok.append(check_runs(dataset, args.rounds, accelerated))
    print("\nresult:", "PASS" if all(ok) else "FAIL (see the lines above)")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
