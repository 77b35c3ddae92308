"""Orchestrator cost of large device populations: per-round scheduling time and peak memory.

Part 1 (in-process, no workers; one fresh process per case): for 10,000 and 100,000 devices, times each
orchestrator-side step of a round as feles.orchestrator.loop does it, with the simulator's own functions and
classes: RoundConditions draw, selection, update plan + job costs + failures, the phase's block of jobs +
queue submit, queue bookkeeping of the results (lease a batch and render its JSON, store a batch's results,
take, as the API handlers and the loop do), reading each result's JobResult metadata as POST /jobs/results
does (its own column, counted in the round; the tensors' decoding belongs to the HTTP handling, which
bench/throughput.py measures), device history, and FedAvg aggregation of the completed updates of a small
model (logreg on 8x8 digits, 650 parameters), then the eval phase's selection and jobs, and the test jobs
(shards of the test split) and their combination. The results-file and checkpoint writes of the round are
timed apart; the case's peak RSS includes torch and the benchmark itself. Like `feles orchestrator`, each case
settles the garbage collector before it starts (feles.orchestrator.collector: the objects of its imports
frozen out of the collector's reach, collections less often).

Part 2 (real processes): a `feles orchestrator --insecure` process with 100,000 devices and two
`feles worker` processes run a few rounds of digits/logreg; the orchestrator's peak RSS (VmHWM) is read
from /proc/<pid>/status before it exits.

Usage: python bench/population.py [--devices 10000 100000] [--k 0.01 0.1] [--rounds 5] [--process-k 0.01]
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from report import header, verdict

from feles.algorithms import DeviceUpdate, build_server
from feles.config import SimulationSpec, parse_spec
from feles.data import DataRequest, load_dataset
from feles.devices import CostModel, DevicePopulation, RoundConditions
from feles.evaluation import Evaluation, combine
from feles.models import build_model
from feles.orchestrator.batching import BATCH_WORK, MAX_BATCH_JOBS, ResultRoom
from feles.orchestrator.checkpoint import Checkpoint, save_checkpoint
from feles.orchestrator.collector import settle_collector
from feles.orchestrator.job_block import JobBlock
from feles.orchestrator.jobs import JobQueue
from feles.orchestrator.planning import DeviceState, PhasePlan, PhaseStrategies, plan_phase, spend_energy
from feles.orchestrator.results import ResultsDocument, RoundRecord
from feles.orchestrator.round_jobs import device_jobs, job_template, shard_jobs
from feles.protocol import JobBatch, JobResult, Phase, read_result_metadata
from feles.strategies.history import DeviceHistory

TARGET_SECONDS = 0.100
#: Room for a batch's results, as GET /v1/jobs/batch counts it for this model (logreg on digits, 2.6 kB encoded).
LEASE_ROOM = ResultRoom.for_model(2_600)
TARGET_RSS_BYTES = 1 << 30
STEPS = [
    "conditions",
    "plan (selection, work, costs, seeds)",
    "jobs + submit",
    "queue bookkeeping",
    "result metadata",
    "history",
    "aggregation",
    "test jobs",
]


def spec_for(devices: int, k: float, rounds: int, output: Path) -> dict[str, Any]:
    """Digits with logistic regression, `devices` devices of ~10 examples, k of them per round."""
    return {
        "simulation": {
            "dataset": "digits",
            "model": "logreg",
            "num_rounds": rounds,
            "seed": 1,
            "output_folder": str(output),
        },
        "algorithms": {
            "fit": {"params": {"k": k, "epochs": 1, "batch_size": 10}},
            "eval": {"params": {"k": k / 2, "batch_size": 64}},
        },
        "devices": {"num": devices, "p_available": 0.8, "p_fail": 0.1},
        "data": {"num_examples_mean": 10, "num_examples_var": 5},
    }


class Timer:
    """Accumulates seconds per named step, and the seconds of what a worker would do (not the orchestrator's)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(STEPS, 0.0)
        self.workers_seconds = 0.0

    def __call__(self, step: str, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        value = action()
        self.seconds[step] += time.perf_counter() - started
        return value

    def workers(self, action: Callable[[], Any]) -> Any:
        """Run a worker's part: its time is left out of the round's."""
        started = time.perf_counter()
        value = action()
        self.workers_seconds += time.perf_counter() - started
        return value


def schedule_phase(
    spec: SimulationSpec,
    phase: Phase,
    round_: int,
    state: DeviceState,
    queue: JobQueue,
    model: dict[str, torch.Tensor],
    timer: Timer,
) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[JobResult, dict[str, torch.Tensor]]]]:
    """One phase as the loop runs it, with every job completed at once by an in-process 'worker'."""
    section = spec.algorithms.fit if phase is Phase.FIT else spec.algorithms.eval
    costs = CostModel.of(spec, sum(t.numel() for t in model.values()))
    strategies = PhaseStrategies(section)

    def plan() -> PhasePlan:
        planned = plan_phase(spec, strategies, (0, round_, phase), state, costs)
        spend_energy(planned, state.energy_left)
        return planned

    planned = timer("plan (selection, work, costs, seeds)", plan)

    def jobs() -> JobBlock:
        template = job_template("0" * 32, 0, round_, phase, round_, queue.lease_seconds)
        block = device_jobs(template, planned.selected, planned.costs.failed, planned.work, planned.seeds)
        queue.submit(block)
        return block

    block = timer("jobs + submit", jobs)

    # What the API handlers do per batch: lease on GET /jobs/batch (the queue renders the batch's JSON); on
    # POST /jobs/results, read each result's metadata (as decode_result does; the tensors' decoding is the
    # HTTP's, in bench/throughput.py) and store the batch's results together; then what the loop does with them.
    while leased := timer("queue bookkeeping", lambda: queue.lease_json("w", MAX_BATCH_JOBS, BATCH_WORK, LEASE_ROOM)):
        messages = timer.workers(lambda body=leased[1]: worker_messages(body))
        results = timer("result metadata", lambda m=messages: [read_result_metadata(raw) for raw in m])
        timer("queue bookkeeping", lambda r=results: queue.complete_many([(x.job_id, x, model) for x in r], "w"))

    def take() -> dict[int, tuple[JobResult, dict[str, torch.Tensor]]]:
        queue.wait_blocks([block], timeout=1.0)
        results = queue.take_blocks([block])[0]
        return {
            device: results[job_id]
            for job_id, device in zip(block.ids, block.devices, strict=True)
            if job_id in results
        }

    by_device = timer("queue bookkeeping", take)
    failed = planned.costs.failed | ~np.isin(planned.selected, list(by_device))
    if phase is Phase.FIT:
        losses = {device: result.loss for device, (result, _) in by_device.items()}
        timer("history", lambda: state.history.record_fit(round_, planned.costs.with_failed(failed), losses))
    return planned.selected, failed, by_device


def worker_messages(body: str) -> list[str]:
    """The JobResult metadata a worker sends for each fit or eval job of a lease (RESULT_METADATA_KEY's value)."""
    return [
        JobResult(
            job_id=job.id, worker_id="w", loss=1.0, num_examples=job.num_examples, num_steps=1, train_seconds=0.001
        ).model_dump_json()
        for job in JobBatch.model_validate_json(body).jobs
    ]


def test_phase(round_: int, test_size: int, shard_size: int, queue: JobQueue) -> Evaluation:
    """The round's test jobs as the loop makes them, completed at once, then combined in shard order."""
    jobs = shard_jobs(job_template("0" * 32, 0, round_, Phase.TEST, round_, queue.lease_seconds), test_size, shard_size)
    queue.submit(jobs)
    while (job := queue.lease("w")) is not None:
        result = JobResult(
            job_id=job.id, worker_id="w", loss=1.0, metric=0.5, num_examples=job.num_examples, num_steps=0,
            train_seconds=0.0,
        )  # fmt: skip
        queue.complete(job.id, result, {})
    results = queue.take_blocks([jobs])[0]
    return combine([Evaluation(r.loss, r.metric or 0.0, r.num_examples) for r, _ in results.values()])


def time_rounds(devices: int, k: float, rounds: int, output: Path) -> dict[str, Any]:
    """Seconds per step of each round (and of writing results and checkpoint) for one population."""
    spec = parse_spec(spec_for(devices, k, rounds, output))
    population = DevicePopulation.draw(spec, 0)
    history = DeviceHistory.empty(devices)
    model = {name: t.detach().clone() for name, t in build_model("logreg", (8, 8), 10).state_dict().items()}
    server = build_server(spec.algorithms)
    queue = JobQueue(lease_seconds=120.0)
    results = ResultsDocument(spec, "0" * 32)
    test_size = len(load_dataset("digits", DataRequest(1, 0, population.data_sizes, None, {})).test.y)
    per_round, persistence, selected_counts = [], [], []
    for round_ in range(rounds):
        timer = Timer()
        started = time.perf_counter()
        conditions = timer("conditions", lambda r=round_: RoundConditions.draw(spec, population, 0, r))
        state = DeviceState(population, conditions, conditions.energy.copy(), history)
        selected, _, fit = schedule_phase(spec, Phase.FIT, round_, state, queue, model, timer)

        def aggregate(fit: dict = fit, model: dict = model) -> dict[str, torch.Tensor]:
            updates = [DeviceUpdate(d, r.num_examples, r.num_steps, r.loss, t) for d, (r, t) in sorted(fit.items())]
            return server.aggregate(model, updates)

        model = timer("aggregation", aggregate)
        schedule_phase(spec, Phase.EVAL, round_, state, queue, model, timer)
        timer("test jobs", lambda r=round_: test_phase(r, test_size, spec.simulation.test_shard_size, queue))
        per_round.append((time.perf_counter() - started - timer.workers_seconds, timer.seconds))
        selected_counts.append(len(selected))
        written = time.perf_counter()
        results.rounds.append(RoundRecord(0, round_, round_ + 1, int(conditions.available.sum()), len(selected), 0,
                                          0, 0, 1.0, 1.0, 0.5, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0))  # fmt: skip
        results.write()
        save_checkpoint(
            output,
            Checkpoint(
                run_id="0" * 32,
                spec=spec.model_dump(mode="json"),
                repetition=0,
                next_round=round_ + 1,
                finished=False,
                model_version=round_ + 1,
                simulated_time=0.0,
                energy=0.0,
                results=results.to_dict(),
                weights=model,
                server_state=server.state_dict(),
                history=history.arrays(),
            ),
        )
        persistence.append(time.perf_counter() - written)
    # The first round pays one-off costs (imports, allocations); the others are the steady state.
    steady = per_round[1:] or per_round
    return {
        "devices": devices,
        "k": k,
        "selected": int(statistics.median(selected_counts)),
        "round_seconds": statistics.median(total for total, _ in steady),
        "first_round_seconds": per_round[0][0],
        "steps": {step: statistics.median(s[step] for _, s in steady) for step in STEPS},
        "persistence_seconds": statistics.median(persistence[1:] or persistence),
    }


def orchestrator_peak_rss(devices: int, k: float, rounds: int, workers: int, folder: Path) -> dict[str, Any]:
    """Run a real orchestrator and workers; the orchestrator's VmHWM and its rounds' wall times."""
    spec_path = folder / "population.yaml"
    spec_path.write_text(yaml.safe_dump(spec_for(devices, k, rounds, folder / "out")))
    port_file = folder / "port"
    feles = [sys.executable, "-m", "feles"]
    command = [*feles, "orchestrator", "--insecure", "--config", str(spec_path), "--host", "127.0.0.1", "--port", "0"]
    command += ["--port-file", str(port_file), "--fresh", "--log-level", "warning"]
    print(f"  orchestrator: {shlex.join(command)}")
    log = (folder / "orchestrator.log").open("wb")
    orchestrator = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    started_workers: list[subprocess.Popen[bytes]] = []
    try:
        while not (port_file.exists() and port_file.read_text().strip()):
            if orchestrator.poll() is not None:
                raise SystemExit(f"orchestrator exited: {(folder / 'orchestrator.log').read_text()[-2000:]}")
            time.sleep(0.1)
        url = f"http://127.0.0.1:{int(port_file.read_text())}"
        for index in range(workers):
            worker = [*feles, "worker", "--orchestrator", url, "--name", f"w{index}", "--log-level", "warning"]
            started_workers.append(subprocess.Popen(worker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        print(f"  workers: {workers} x {shlex.join([*feles, 'worker', '--orchestrator', url])}")
        results = folder / "out" / "results.json"
        while True:
            if orchestrator.poll() is not None:
                raise SystemExit(f"orchestrator exited: {(folder / 'orchestrator.log').read_text()[-2000:]}")
            if results.exists():
                document = json.loads(results.read_text())
                if document["status"] != "running":
                    break
            time.sleep(0.5)
        peak = _vm_hwm(orchestrator.pid)
    finally:
        for process in [*started_workers, orchestrator]:
            if process.poll() is None:
                process.terminate()
        for process in [*started_workers, orchestrator]:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
    if document["status"] != "succeeded":
        raise SystemExit(f"simulation {document['status']}: {document['message']}")
    walls = [row["wall_time"] for row in document["rounds"]]
    return {"peak_rss": peak, "round_wall_seconds": walls, "selected": document["rounds"][0]["fit_selected"]}


def _vm_hwm(pid: int) -> int:
    """Peak resident set size of a live process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--k", type=float, nargs="+", default=[0.01, 0.1], help="Fractions selected per round.")
    parser.add_argument("--rounds", type=int, default=6, help="Rounds timed in-process (the first is warm-up).")
    parser.add_argument("--process-devices", type=int, default=100_000)
    parser.add_argument("--process-k", type=float, default=0.01)
    parser.add_argument("--process-rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-process", action="store_true", help="Only the in-process timings.")
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.case:
        settle_collector()  # as `feles orchestrator` does before it serves
        row = time_rounds(int(args.case[0]), float(args.case[1]), args.rounds, args.output)
        print(json.dumps({**row, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
        return
    header("population: orchestrator per-round scheduling time and peak memory")
    print("part 1, in-process, a process per case (median of rounds 2..n; ms):")
    print("  devices  k      selected  round   " + "  ".join(f"{step:>{max(len(step), 6)}}" for step in STEPS)
          + "  results+checkpoint  peak RSS (MiB)")  # fmt: skip
    worst: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="feles-population-") as folder:
        for devices in args.devices:
            for k in args.k:
                # A fresh process per case: one population per orchestrator, no garbage of the previous case.
                case = [sys.executable, str(Path(__file__).resolve()), "--case", str(devices), str(k)]
                case += ["--rounds", str(args.rounds), "--output", str(Path(folder) / f"{devices}-{k}")]
                row = json.loads(subprocess.run(case, capture_output=True, text=True, check=True).stdout)
                steps = "  ".join(f"{row['steps'][s] * 1e3:>{max(len(s), 6)}.1f}" for s in STEPS)
                print(
                    f"  {devices:>7,}  {k:<5}  {row['selected']:>8,}  {row['round_seconds'] * 1e3:6.1f}   {steps}"
                    f"  {row['persistence_seconds'] * 1e3:18.1f}  {row['peak_rss'] / 2**20:,.0f}"
                )
                worst[devices] = max(worst.get(devices, 0.0), row["round_seconds"])
        for devices, seconds in worst.items():
            print("  " + verdict(f"scheduling per round, {devices:,} devices, largest k", seconds * 1e3,
                                 TARGET_SECONDS * 1e3, higher_is_better=False, unit=" ms"))  # fmt: skip
        if args.skip_process:
            return
        devices, k = args.process_devices, args.process_k
        print(
            f"part 2, real processes: {devices:,} devices, k {k}, {args.process_rounds} rounds, {args.workers} workers"
        )
        outcome = orchestrator_peak_rss(devices, k, args.process_rounds, args.workers, Path(folder))
        walls = ", ".join(f"{seconds:.2f}" for seconds in outcome["round_wall_seconds"])
        print(
            f"  {outcome['selected']:,} fit jobs per round; orchestrator round wall times (s, with training): {walls}"
        )
        print("  " + verdict(f"orchestrator peak RSS, {devices:,} devices", outcome["peak_rss"] / 2**20,
                             TARGET_RSS_BYTES / 2**20, higher_is_better=False, unit=" MiB"))  # fmt: skip


if __name__ == "__main__":
    main()
