"""GPU check: the same jobs on the CPU and on CUDA; the speed-up and the largest difference in the results.

Builds a worker's state for a small simulation (Fashion-MNIST when its files are there, else the bundled digits)
and runs, through the worker's own `run_job`, N fit jobs (1 epoch, batch 32), N eval jobs and one test job
of the whole test split, for each model and algorithm (FedAvg, FedProx): first on the CPU, then on CUDA
(after a warm-up), then on CUDA again in reverse order. It also trains the fit jobs stacked on CUDA
(feles.worker.job_groups.run_jobs). It prints the seconds of each side, the speed-up over the CPU and the
largest differences, and exits

  0  every difference within the tolerances below, and CUDA twice gave the same bits;
  1  a difference over its tolerance, or two CUDA runs of the same jobs differ (non-deterministic kernels);
  2  no CUDA GPU (torch sees none): nothing to check.

Tolerances (docs/accelerators.md): weights and losses 1e-4 absolute; accuracy 0.002 (an example whose two
best logits nearly tie may flip). `--cpu-only` is the self-check of this script on machines without a GPU:
the "accelerated" side is a second CPU worker state, so the differences must be exactly 0.

Usage: python bench/gpu_check.py [--jobs 20] [--models cnn mlp_small] [--algorithms fedavg fedprox]
                                 [--dataset fashion_mnist] [--cpu-only]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

import torch

from feles.algorithms import build_client
from feles.config import SimulationSpec
from feles.data.fashion_mnist import DEFAULT_DIR, FILES
from feles.protocol import ExampleRange, Job, JobResult, Phase
from feles.strategies import LOCAL_DATA_OPTIMIZERS
from feles.worker.accelerator import prepare_device, resolve_device
from feles.worker.job_groups import run_jobs
from feles.worker.state import WorkerState
from feles.worker.trainer import run_job

WEIGHT_TOLERANCE = 1e-4
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

    def add(self, job: Job, a: Output, b: Output) -> None:
        (ra, ta), (rb, tb) = a, b
        self._max("loss", abs(ra.loss - rb.loss), job)
        self._max("accuracy", abs((ra.metric or 0.0) - (rb.metric or 0.0)), job)
        for name, tensor in ta.items():
            self._max("weights", float((tensor - tb[name]).abs().max()), job)

    def _max(self, kind: str, value: float, job: Job) -> None:
        if value > getattr(self, kind):
            setattr(self, kind, value)
            self.where[kind] = job.id

    def within(self) -> bool:
        return self.weights <= WEIGHT_TOLERANCE and self.loss <= LOSS_TOLERANCE and self.accuracy <= ACCURACY_TOLERANCE

    def line(self) -> str:
        return (
            f"weights {self.weights:.2e} (<= {WEIGHT_TOLERANCE:g}), loss {self.loss:.2e} (<= {LOSS_TOLERANCE:g}), "
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


def default_dataset() -> str:
    return "fashion_mnist" if all((DEFAULT_DIR / f"{name}.gz").exists() for name in FILES.values()) else "digits"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help="fit jobs (and as many eval jobs) per model")
    parser.add_argument("--models", nargs="+", default=["cnn", "mlp_small"])
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHM_PARAMS), choices=list(ALGORITHM_PARAMS))
    parser.add_argument("--dataset", default=None, help="default: fashion_mnist when its files are there, else digits")
    parser.add_argument("--cpu-only", action="store_true", help="self-check on a machine without a GPU")
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
        print(f"GPU: {torch.cuda.get_device_name(accelerated)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    dataset = args.dataset or default_dataset()
    ok = [
        check_model(dataset, model, algorithm, args.jobs, accelerated)
        for model in args.models
        for algorithm in args.algorithms
    ]
    print("\nresult:", "PASS" if all(ok) else "FAIL (see the lines above)")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
