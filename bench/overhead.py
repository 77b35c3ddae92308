"""Overhead of `feles run` over a plain single-process torch loop that does exactly the same training.

The baseline derives each round's devices, epochs, batches, examples and seeds with the simulator's own
pure functions (feles.devices, feles.strategies, feles.seeding, feles.orchestrator.planning.plan_phase and
feles.worker.state.build_repetition_data), then trains them with a plain SGD loop, averages them
FedAvg-style, runs the same device evaluations and evaluates the global model on the whole test split
every round (the simulator's workers do it in shards). It must end with the same test accuracies as the
simulator, which this script checks.

Usage: python bench/overhead.py [--config examples/quickstart.yaml] [--repeat 2] [--data-dir DIR]
(internally `python bench/overhead.py --baseline SPEC` runs the baseline in its own process).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from report import header, verdict

from feles.config import SimulationSpec, load_spec
from feles.data import (
    DevicePartitions,
    FederatedDataset,
    default_model_for,
    resolve_data_dir,
)
from feles.devices import CostModel, DevicePopulation, JobCosts, RoundConditions, federation_repetition
from feles.evaluation import EVAL_BATCH_SIZE
from feles.models import build_model, initialize_model
from feles.orchestrator.planning import DeviceState, PhaseStrategies, plan_phase, spend_energy
from feles.protocol import Phase
from feles.seeding import numpy_rng, torch_seed
from feles.strategies import LOCAL_DATA_OPTIMIZERS
from feles.strategies.history import DeviceHistory
from feles.worker.state import build_repetition_data

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.15
#: torch threads of a `feles run` worker (training, device and test evaluation): both sides use one core.
WORKER_THREADS = 1


@dataclass(frozen=True)
class PlainJob:
    device: int
    epochs: int
    batch_size: int
    num_examples: int
    seed: int


class Schedule:
    """Which devices do what in each phase, derived exactly as feles.orchestrator.loop does."""

    def __init__(self, spec: SimulationSpec, repetition: int, population: DevicePopulation, parameters: int) -> None:
        self.spec, self.repetition, self.population, self.parameters = spec, repetition, population, parameters
        self.history = DeviceHistory.empty(spec.devices.num)
        self.strategies = {"fit": PhaseStrategies(spec.algorithms.fit), "eval": PhaseStrategies(spec.algorithms.eval)}

    def phase(
        self, round_: int, phase: str, conditions: RoundConditions, energy_left: np.ndarray
    ) -> tuple[JobCosts, list[PlainJob]]:
        """The phase's costs (with its failures) and the jobs of the devices that did not fail."""
        state = DeviceState(self.population, conditions, energy_left, self.history)
        when = (self.repetition, round_, Phase(phase))
        plan = plan_phase(self.spec, self.strategies[phase], when, state, CostModel.of(self.spec, self.parameters))
        spend_energy(plan, energy_left)
        work = plan.work
        jobs = [
            PlainJob(int(device), int(work.epochs[i]), int(work.batch_size[i]), int(work.num_examples[i]), seed)
            for i, (device, seed) in enumerate(zip(plan.selected.tolist(), plan.seeds.tolist(), strict=True))
            if not plan.costs.failed[i]
        ]
        return plan.costs, jobs


class LocalExamples:
    """A job's examples: the local data strategy's choice among the device's partition, as the worker makes it."""

    def __init__(self, spec: SimulationSpec, dataset: FederatedDataset, partitions: DevicePartitions) -> None:
        self.dataset, self.partitions = dataset, partitions
        # A plain loop standardises the whole train split once (workers keep uint8 and standardise per job).
        self.train_x = dataset.train.inputs()
        sections = {"fit": spec.algorithms.fit, "eval": spec.algorithms.eval}
        self.choosers = {phase: LOCAL_DATA_OPTIMIZERS.get(s.data)(s.data_params) for phase, s in sections.items()}

    def of(self, job: PlainJob, phase: str) -> tuple[torch.Tensor, torch.Tensor]:
        rng = numpy_rng(job.seed, "local-data")
        if phase == "eval":  # a device evaluates on its own test partition
            indices = self.partitions.test_indices[job.device]
            chosen = torch.from_numpy(indices[self.choosers[phase].choose(len(indices), job.num_examples, rng)])
            return self.dataset.test.inputs(chosen), self.dataset.test.y[chosen]
        indices = self.partitions.indices[job.device]
        positions = self.choosers[phase].choose(len(indices), job.num_examples, rng)
        return self.train_x[torch.from_numpy(indices[positions])], self.partitions.labels[job.device][positions]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE
) -> tuple[float, float]:
    model.eval()
    loss, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        logits = model(x[start : start + batch_size])
        loss += float(torch.nn.functional.cross_entropy(logits, y[start : start + batch_size], reduction="sum"))
        correct += int((logits.argmax(dim=1) == y[start : start + batch_size]).sum())
    return loss / max(len(y), 1), correct / max(len(y), 1)


def train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, job: PlainJob, spec: SimulationSpec) -> float:
    """Plain mini-batch SGD in a seeded order; the mean training loss."""
    algorithms = spec.algorithms
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=algorithms.learning_rate,
        momentum=algorithms.momentum,
        weight_decay=algorithms.weight_decay,
    )
    generator = torch.Generator().manual_seed(job.seed)
    torch.manual_seed(job.seed)
    model.train()
    total, steps = 0.0, 0
    for _ in range(job.epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), job.batch_size):
            batch = order[start : start + job.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            total += loss.item()
            steps += 1
    return total / max(steps, 1)


def baseline(config: Path, data_dir: str | None) -> dict[str, Any]:
    """Run the plain loop for every repetition; per-round test accuracies and seconds."""
    spec = load_spec(config)
    if spec.algorithms.federated_algorithm != "fedavg" or spec.algorithms.optimizer != "sgd":
        raise SystemExit("the baseline reproduces FedAvg with SGD only")
    started = time.perf_counter()
    torch.set_num_threads(WORKER_THREADS)
    accuracies: list[float] = []
    round_seconds: list[float] = []
    round_ends: list[float] = []  # time.time() at the end of each round, for bench/light.py
    first_job_at: float | None = None
    for repetition in range(spec.simulation.repetitions):
        population = DevicePopulation.draw(spec, repetition)
        data = build_repetition_data(spec, repetition, resolve_data_dir(data_dir, spec.simulation.data_dir))
        dataset, partitions = data.dataset, data.partitions
        model_name = spec.simulation.model or default_model_for(spec.simulation.dataset)
        model = build_model(model_name, dataset.input_shape, dataset.num_classes)
        initialize_model(
            model,
            spec.simulation.initializer,
            torch_seed(spec.simulation.seed, "init", federation_repetition(spec, repetition)),
        )
        weights = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        parameters = sum(parameter.numel() for parameter in model.parameters())
        schedule = Schedule(spec, repetition, population, parameters)
        examples = LocalExamples(spec, dataset, partitions)
        test_x = dataset.test.inputs()

        for round_ in range(spec.simulation.num_rounds):
            round_started = time.perf_counter()
            conditions = RoundConditions.draw(spec, population, repetition, round_)
            energy_left = conditions.energy.copy()
            costs, jobs = schedule.phase(round_, "fit", conditions, energy_left)
            local: list[tuple[int, dict[str, torch.Tensor]]] = []
            losses = {}
            for job in jobs:
                first_job_at = first_job_at or time.time()
                model.load_state_dict(weights)
                x, y = examples.of(job, "fit")
                losses[job.device] = train(model, x, y, job, spec)
                local.append((len(y), {name: t.detach().clone() for name, t in model.state_dict().items()}))
            schedule.history.record_fit(round_, costs, losses)  # every job completes: no extra failures
            if local:
                total = float(sum(n for n, _ in local))
                weights = {
                    name: sum(
                        (state[name].to(torch.float64) * (n / total) for n, state in local),
                        torch.zeros_like(first, dtype=torch.float64),
                    ).to(first.dtype)
                    for name, first in local[0][1].items()
                }
            _, eval_jobs = schedule.phase(round_, "eval", conditions, energy_left)
            model.load_state_dict(weights)
            for job in eval_jobs:
                evaluate(model, *examples.of(job, "eval"))
            _, accuracy = evaluate(model, test_x, dataset.test.y)
            accuracies.append(accuracy)
            round_seconds.append(time.perf_counter() - round_started)
            round_ends.append(time.time())
            target = spec.simulation.stop_conds.metric
            if target is not None and accuracy >= target:
                break
    return {
        "accuracies": accuracies,
        "round_seconds": round_seconds,
        "round_ends": round_ends,
        "first_job_at": first_job_at,
        "seconds": time.perf_counter() - started,
    }


def timed(command: list[str]) -> tuple[float, str]:
    """Wall seconds of a command (which must succeed) and its standard output."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "quickstart.yaml")
    parser.add_argument("--repeat", type=int, default=2, help="Runs of each side; the best is reported.")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--baseline", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        print(json.dumps(baseline(args.baseline, args.data_dir)))
        return

    header("overhead: feles run (1 worker) vs a plain single-process torch loop doing the same training")
    with tempfile.TemporaryDirectory(prefix="feles-overhead-") as folder:
        document = yaml.safe_load(args.config.read_text())
        document.setdefault("simulation", {})["output_folder"] = str(Path(folder) / "out")
        spec_path = Path(folder) / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(document))
        data = ["--data-dir", args.data_dir] if args.data_dir else []
        feles_command = [sys.executable, "-m", "feles", "run", str(spec_path), "--workers", "1", *data]
        plain_command = [sys.executable, str(Path(__file__).resolve()), "--baseline", str(spec_path), *data]
        print(f"workload: {args.config} (output folder moved to a temporary folder)")
        print(f"feles:    {shlex.join(feles_command)}")
        print(f"baseline: {shlex.join(plain_command)}")
        feles_runs, plain_runs = [], []
        for attempt in range(args.repeat):
            seconds, _ = timed(feles_command)
            results = json.loads((Path(folder) / "out" / "results.json").read_text())
            rounds = results["rounds"]
            feles_runs.append((seconds, sum(r["wall_time"] for r in rounds), [r["test_accuracy"] for r in rounds]))
            seconds, output = timed(plain_command)
            plain = json.loads(output)
            plain_runs.append((seconds, sum(plain["round_seconds"]), plain["accuracies"]))
            print(
                f"  run {attempt + 1}: feles {feles_runs[-1][0]:.1f} s (rounds {feles_runs[-1][1]:.1f} s), "
                f"baseline {seconds:.1f} s (rounds {plain_runs[-1][1]:.1f} s)"
            )
    best_feles, best_plain = min(feles_runs), min(plain_runs)
    same = all(np.allclose(f[2], p[2], atol=1e-6) for f in feles_runs for p in plain_runs)
    print(f"same test accuracy every round in both: {'yes' if same else 'NO'} (final {best_feles[2][-1]:.4f})")
    print(f"feles run, best of {args.repeat}:   {best_feles[0]:.1f} s end to end, {best_feles[1]:.1f} s in rounds")
    print(f"plain loop, best of {args.repeat}:  {best_plain[0]:.1f} s end to end, {best_plain[1]:.1f} s in rounds")
    rounds_ratio = min(f[1] for f in feles_runs) / min(p[1] for p in plain_runs)
    print(f"ratio in rounds (sum of round wall times): {rounds_ratio:.2f}")
    print(verdict("overhead ratio end to end", best_feles[0] / best_plain[0], TARGET_RATIO, higher_is_better=False))


if __name__ == "__main__":
    main()
