"""Tiny jobs through 2 workers over loopback: jobs per second and the orchestrator's CPU per round, with and
without batched leases and results, and with stacked training, side by side in one run.

A real `feles orchestrator --insecure` process serves a population of 100,000 devices of ~10 examples each
(digits, logreg: 650 parameters), 10,000 fit jobs a round (k = 0.1) and 1,000 eval jobs (every device
available, none failing), to two worker processes (`feles.worker.client.Worker`) that ask for up to
256 jobs per request (batched; the orchestrator decides how many come, feles/orchestrator/batching.py) or
use the single-job routes (unbatched, `max_jobs=1`); in the stacked mode they lease batches and train their
alike fit jobs together (`stack_jobs`, `--stack-jobs`; opt-in: results within float tolerance, not bit for bit).
The modes (`--modes`) alternate, `--repeat` times each.

Per mode it prints jobs/s over the steady rounds (2..n: the first pays the workers' start-up), the rounds'
wall times, the orchestrator process's CPU seconds per round (user + system, from /proc/<pid>/stat: the
scheduling, the HTTP handling, the aggregation and the writes of a round together), and whether the
results files are identical across the unbatched and batched runs (they must be: a job's result never depends
on its batch); for stacked runs, the largest relative difference of any round's figures from the batched run.

The jobs/s target is absolute, so it also depends on the machine's speed. Each repeat therefore also times the
ceiling on this machine: one process running a round's jobs (the same devices' sizes, batch sizes and epochs)
through the worker's own `run_job`, with no HTTP and no orchestrator, one torch thread. Each mode is printed
as a share of `workers` such processes (what `workers` cores could do if the jobs' own work were all there is).

Usage: python bench/throughput.py [--devices 100000] [--k 0.1] [--rounds 4] [--repeat 2]
                                  [--modes unbatched batched stacked] [--stack-jobs 64]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from report import header, verdict

from feles.algorithms import build_client
from feles.config import SimulationSpec
from feles.protocol import Job, Phase
from feles.strategies import LOCAL_DATA_OPTIMIZERS
from feles.worker.client import DEFAULT_MAX_JOBS
from feles.worker.state import WorkerState
from feles.worker.trainer import device_examples, run_job

TARGET_JOBS_PER_SECOND = 5000.0
#: Jobs a worker asks for per request in each mode, and whether it stacks alike fit jobs.
MODES = {"unbatched": (1, False), "batched": (DEFAULT_MAX_JOBS, False), "stacked": (DEFAULT_MAX_JOBS, True)}
#: Modes whose results must be identical, bit for bit.
EXACT_MODES = ("unbatched", "batched")
WORKER_CODE = (
    "import sys; from feles.worker.client import Worker, WorkerOptions; "
    "sys.exit(Worker(WorkerOptions(orchestrator=sys.argv[1], name=sys.argv[2], max_jobs=int(sys.argv[3]), "
    "stack_jobs=int(sys.argv[4]))).run())"
)


def spec_for(devices: int, k: float, eval_k: float, rounds: int) -> dict[str, Any]:
    """Digits with logistic regression, `devices` devices of ~10 examples, every one available, none failing."""
    return {
        "simulation": {"dataset": "digits", "model": "logreg", "num_rounds": rounds, "seed": 1},
        "algorithms": {
            "fit": {"params": {"k": k, "epochs": 1, "batch_size": 10}},
            "eval": {"params": {"k": eval_k, "batch_size": 64}},
        },
        "devices": {"num": devices, "p_available": 1.0, "p_fail": 0.0},
        "data": {"num_examples_mean": 10, "num_examples_var": 5},
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_idle_seconds() -> float:
    """Idle seconds so far of the whole machine, all cores together (/proc/stat: idle + iowait)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return (int(fields[3]) + int(fields[4])) / os.sysconf("SC_CLK_TCK")


def _jobs(row: dict[str, Any]) -> int:
    # Every device is available and none fails: each selected device is one job; plus the test shard(s).
    return row["fit_selected"] - row["fit_failed"] + row["eval_selected"] - row["eval_failed"] + 1


def run_once(spec_path: Path, output: Path, max_jobs: int, stack_jobs: int, workers: int) -> dict[str, Any]:
    """One simulation; per finished round: wall seconds, jobs, orchestrator CPU seconds."""
    port_file = output.parent / f"{output.name}.port"
    command = [sys.executable, "-m", "feles", "orchestrator", "--insecure", "--config", str(spec_path)]
    command += ["--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file), "--fresh"]
    command += ["--output-folder", str(output), "--log-level", "warning"]
    log = (output.parent / f"{output.name}.log").open("wb")
    orchestrator = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    started: list[subprocess.Popen[bytes]] = []
    cpu_at_round: list[float] = []
    workers_cpu_at_round: list[float] = []
    idle_at_round: list[float] = []
    try:
        while not (port_file.exists() and port_file.read_text().strip()):
            if orchestrator.poll() is not None:
                raise SystemExit(f"orchestrator exited: {log.name}")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{int(port_file.read_text())}"
        for index in range(workers):
            worker = [sys.executable, "-c", WORKER_CODE, url, f"w{index}", str(max_jobs), str(stack_jobs)]
            started.append(subprocess.Popen(worker))
        results = output / "results.json"
        document: dict[str, Any] = {"status": "running", "rounds": []}
        while document["status"] == "running":
            if orchestrator.poll() is not None:
                raise SystemExit(f"orchestrator exited: {log.name}")
            time.sleep(0.05)
            if results.exists():
                document = json.loads(results.read_text())
                while len(cpu_at_round) < len(document["rounds"]):
                    cpu_at_round.append(_cpu_seconds(orchestrator.pid))
                    workers_cpu_at_round.append(sum(_cpu_seconds(worker.pid) for worker in started))
                    idle_at_round.append(_machine_idle_seconds())
    finally:
        for process in [*started, orchestrator]:
            if process.poll() is None:
                process.terminate()
        for process in [*started, orchestrator]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
    if document["status"] != "succeeded":
        raise SystemExit(f"simulation {document['status']}: {document['message']}")
    rounds = document["rounds"]
    return {
        "walls": [row["wall_time"] for row in rounds],
        "jobs": [_jobs(row) for row in rounds],
        # CPU seconds of rounds 2..n: the first sample is taken when round 1 ends.
        "cpu": [later - earlier for earlier, later in itertools.pairwise(cpu_at_round)],
        "workers_cpu": [later - earlier for earlier, later in itertools.pairwise(workers_cpu_at_round)],
        "idle": [later - earlier for earlier, later in itertools.pairwise(idle_at_round)],
        "rounds": [{key: value for key, value in row.items() if key != "wall_time"} for row in rounds],
    }


def round_jobs(state: WorkerState, k: float, eval_k: float) -> list[Job]:
    """One round's fit and eval jobs of a random k and eval_k of the devices (those with examples)."""
    spec = state.spec
    partitions = state.repetition_data(0).partitions
    devices, rng = spec.devices.num, np.random.default_rng(0)
    common = {"run_id": "bench", "repetition": 0, "round": 0, "model_version": 0, "epochs": 1, "lease_seconds": 60}
    return [
        Job(id=f"{phase.value}-{device}", phase=phase, device=int(device), seed=int(device),
            num_examples=len(indices[device]), batch_size=section.params.batch_size, **common)
        for phase, fraction, indices, section in (
            (Phase.FIT, k, partitions.indices, spec.algorithms.fit),
            (Phase.EVAL, eval_k, partitions.test_indices, spec.algorithms.eval),
        )
        for device in rng.choice(devices, round(devices * fraction), replace=False)
        if len(indices[device])
    ]  # fmt: skip


def bench_state(spec_document: dict[str, Any]) -> WorkerState:
    """A worker's state for the spec, as a worker builds it."""
    spec = SimulationSpec.model_validate(spec_document)
    sections = {Phase.FIT: spec.algorithms.fit, Phase.EVAL: spec.algorithms.eval}
    local_data = {phase: LOCAL_DATA_OPTIMIZERS.get(s.data)(s.data_params) for phase, s in sections.items()}
    return WorkerState("bench", "bench", spec, spec.simulation.model, None, build_client(spec.algorithms), local_data)


def in_process_rate(spec_document: dict[str, Any], k: float, eval_k: float) -> float:
    """Jobs a second of this process running one round's fit and eval jobs through `run_job`: the ceiling of a core."""
    state = bench_state(spec_document)
    jobs = round_jobs(state, k, eval_k)
    weights = {name: tensor.detach().clone() for name, tensor in state.module(0).state_dict().items()}
    for job in jobs[:200]:  # warm-up
        run_job(state, job, weights)
    started = time.perf_counter()
    for job in jobs:
        run_job(state, job, weights)
    return len(jobs) / (time.perf_counter() - started)


def bare_torch_rate(spec_document: dict[str, Any], k: float, eval_k: float) -> float:
    """Jobs a second of the same jobs' arithmetic in plain eager torch, with nothing of FELES around it: a floor
    under any implementation's per-job cost on this machine.

    Each job's examples are gathered before the clock starts; timed per fit job are what its training cannot do
    without (the global weights copied in, a seeded batch order, per batch the forward pass, the loss, the
    backward pass and the SGD update, the loss read out, the trained weights copied out), per eval job one forward
    pass, its loss and its accuracy.
    """
    state = bench_state(spec_document)
    jobs = round_jobs(state, k, eval_k)
    learning_rate = state.spec.algorithms.local_learning_rate
    prepared = []
    for job in jobs:
        x, y = device_examples(state, job)
        prepared.append((job.phase is Phase.FIT, job.seed, job.batch_size, x.flatten(1).float(), y))
    model = torch.nn.Linear(prepared[0][3].shape[1], state.repetition_data(0).dataset.num_classes)
    weights = [tensor.detach().clone() for tensor in model.parameters()]

    def run(fit: bool, seed: int, batch_size: int, x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.no_grad():
            for parameter, value in zip(model.parameters(), weights, strict=True):
                parameter.copy_(value)
        if not fit:
            with torch.no_grad():
                outputs = model(x)
                torch.nn.functional.cross_entropy(outputs, y).item()
                (outputs.argmax(1) == y).sum().item()
            return
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        for start in range(0, len(y), batch_size):
            batch = order[start : start + batch_size]
            for parameter in model.parameters():
                parameter.grad = None
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.add_(parameter.grad, alpha=-learning_rate)
            loss.item()
        [parameter.detach().clone() for parameter in model.parameters()]

    for job in prepared[:200]:  # warm-up
        run(*job)
    started = time.perf_counter()
    for job in prepared:
        run(*job)
    return len(prepared) / (time.perf_counter() - started)


def largest_relative_difference(rows: list[dict[str, Any]], reference: list[dict[str, Any]]) -> float:
    """Largest |a - b| / max(|b|, 1e-12) over the numeric figures of every round (wall times left out)."""
    largest = 0.0
    for row, expected in zip(rows, reference, strict=True):
        for key, value in expected.items():
            other = row[key]
            if isinstance(value, float) and isinstance(other, float):
                largest = max(largest, abs(other - value) / max(abs(value), 1e-12))
            elif other != value:
                return float("inf")
    return largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--k", type=float, default=0.1, help="Fraction of devices trained per round.")
    parser.add_argument("--eval-k", type=float, default=0.01, help="Fraction of devices evaluated per round.")
    parser.add_argument("--rounds", type=int, default=4, help="Rounds per run; the first is warm-up.")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--stack-jobs", type=int, default=64, help="Most fit jobs a stacked worker trains together.")
    args = parser.parse_args()
    header("throughput: tiny jobs through workers over loopback, unbatched vs batched vs batched + stacked")
    print(f"workers: {args.workers} x "
          f"{shlex.join([sys.executable, '-c', WORKER_CODE, 'URL', 'NAME', 'MAX_JOBS', 'STACK_JOBS'])}")  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in args.modes}
    ceilings: list[float] = []
    floors: list[float] = []
    torch.set_num_threads(1)  # as a worker
    with tempfile.TemporaryDirectory(prefix="feles-throughput-") as folder:
        spec_path = Path(folder) / "spec.yaml"
        spec_document = spec_for(args.devices, args.k, args.eval_k, args.rounds)
        spec_path.write_text(yaml.safe_dump(spec_document))
        for index in range(args.repeat):
            ceilings.append(in_process_rate(spec_document, args.k, args.eval_k))
            floors.append(bare_torch_rate(spec_document, args.k, args.eval_k))
            for mode in args.modes:  # interleaved: the machine's load hits every mode alike
                max_jobs, stacked = MODES[mode]
                stack_jobs = args.stack_jobs if stacked else 1
                output = Path(folder) / f"{mode}-{index}"
                runs[mode].append(run_once(spec_path, output, max_jobs, stack_jobs, args.workers))
    first = next(iter(runs.values()))[0]
    print(f"{args.devices:,} devices, {first['jobs'][0]:,} jobs a round, {args.rounds} rounds, "
          f"{args.workers} workers; median over runs of the steady rounds (2..n)")  # fmt: skip
    ceiling = statistics.median(ceilings)
    each = ", ".join(f"{c:,.0f}" for c in ceilings)
    print(f"  in one process through run_job, no HTTP: {ceiling:,.0f} jobs/s ({each}); "
          f"{args.workers} such processes: {args.workers * ceiling:,.0f}")  # fmt: skip
    bare = statistics.median(floors)
    print(f"  the same jobs' arithmetic in bare eager torch, examples gathered beforehand, nothing of FELES: "
          f"{bare:,.0f} jobs/s ({', '.join(f'{f:,.0f}' for f in floors)}); {args.workers} such processes: "
          f"{args.workers * bare:,.0f}")  # fmt: skip
    print("  mode        jobs/s    s/round   orchestrator CPU s/round   share of the ceiling   round wall times (s)")
    rates: dict[str, float] = {}
    for mode, done in runs.items():
        rate = statistics.median(sum(r["jobs"][1:]) / sum(r["walls"][1:]) for r in done)
        wall = statistics.median(statistics.median(r["walls"][1:]) for r in done)
        cpu = statistics.median(statistics.median(r["cpu"]) for r in done)
        walls = " | ".join(", ".join(f"{w:.2f}" for w in r["walls"]) for r in done)
        share = rate / (args.workers * ceiling)
        print(f"  {mode:<10} {rate:8,.0f}  {wall:8.2f}   {cpu:24.2f}   {share:20.2f}   {walls}")
        rates[mode] = rate
    print("  a steady round's core-seconds (median): workers (of it, the jobs' run_job at the ceiling's pace),")
    print("  orchestrator, machine idle; the rest is other processes and the sampling's slack")
    for mode, done in runs.items():
        workers_cpu = statistics.median(statistics.median(r["workers_cpu"]) for r in done)
        jobs = statistics.median(statistics.median(r["jobs"][1:]) for r in done)
        cpu = statistics.median(statistics.median(r["cpu"]) for r in done)
        idle = statistics.median(statistics.median(r["idle"]) for r in done)
        print(f"  {mode:<10} workers {workers_cpu:.2f} ({jobs / ceiling:.2f}), orchestrator {cpu:.2f}, idle {idle:.2f}")
    for mode in rates:
        if mode != "unbatched" and "unbatched" in rates:
            print(f"  {mode} / unbatched: {rates[mode] / rates['unbatched']:.2f}x")
    exact = [r["rounds"] for mode in EXACT_MODES if mode in runs for r in runs[mode]]
    identical = all(rows == exact[0] for rows in exact)
    if exact:
        print(f"  results identical across {' and '.join(m for m in EXACT_MODES if m in runs)} runs "
              f"(wall times aside): {identical}")  # fmt: skip
    if "stacked" in runs and exact:
        difference = max(largest_relative_difference(r["rounds"], exact[0]) for r in runs["stacked"])
        print(f"  stacked vs one by one: largest relative difference of a round's figures {difference:.1e}")
    # Each mode against the target: batched is bit for bit one-by-one training, stacked within float tolerance.
    for mode in [mode for mode in rates if mode != "unbatched"] or list(rates):
        print("  " + verdict(f"{mode} jobs/s", rates[mode], TARGET_JOBS_PER_SECOND, higher_is_better=True))
    if args.workers * bare < TARGET_JOBS_PER_SECOND:
        print(
            f"  out of reach on this machine one by one: {args.workers} processes of bare torch alone do "
            f"{args.workers * bare:,.0f} jobs/s, below the target, before any data, HTTP or orchestrator work"
        )
    if not identical:
        raise SystemExit("results differ between batched and unbatched runs")


if __name__ == "__main__":
    main()
