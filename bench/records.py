"""Cost of the device records: time added to a round, and memory over a long run of a large population.

Builds each round as the orchestrator does (RoundConditions, plan_phase for fit and eval with the real
strategies and cost model, one JobResult per device that completes) and times what the loop does before
its checkpoint: RecordsWriter.write_round (the rows of both phases and the round's availability; the two
Parquet parts are written on the writer's thread), results.json and results.csv, and the wait for the
parts; minus the results write alone, that is what the records add to a round. It does so for many
rounds and samples the process's RSS, which must not grow (nothing of a round is kept after its write).

Usage: python bench/records.py [--devices 100000] [--k 0.01] [--rounds 1000] [--timed 50]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from report import header, verdict

from feles.config import SimulationSpec, parse_spec
from feles.devices import CostModel, DevicePopulation, RoundConditions
from feles.orchestrator.outcomes import PhaseOutcome
from feles.orchestrator.planning import DeviceState, PhaseStrategies, plan_phase, spend_energy
from feles.orchestrator.records import RecordsWriter
from feles.orchestrator.results import ResultsDocument, RoundRecord
from feles.protocol import JobResult, Phase
from feles.strategies.history import DeviceHistory

TARGET_MS = 5.0
#: A results row as the loop appends one per round (the values do not matter, the size does).
ROUND = RoundRecord(0, 0, 1, 80_000, 1_000, 100, 1_000, 100, 1.0, 1.0, 0.5, 1.0, 0.5, 10.0, 10.0, 1e4, 1.0)
#: The model size only sets communication times; 650 parameters is logreg on 8x8 digits.
PARAMETERS = 650


def spec_for(devices: int, k: float, output: Path) -> SimulationSpec:
    return parse_spec(
        {
            "simulation": {"dataset": "digits", "model": "logreg", "output_folder": str(output)},
            "devices": {"num": devices, "p_available": 0.8, "p_fail": 0.1},
            "algorithms": {"fit": {"params": {"k": k}}, "eval": {"params": {"k": k}}},
        }
    )


def phase(
    spec: SimulationSpec, strategies: PhaseStrategies, round_: int, kind: Phase, state: DeviceState
) -> PhaseOutcome:
    plan = plan_phase(spec, strategies, (0, round_, kind), state, CostModel.of(spec, PARAMETERS))
    spend_energy(plan, state.energy_left)
    completed = plan.selected[~plan.costs.failed].tolist()
    accuracy = 0.5 if kind is Phase.EVAL else None
    results = {
        device: (
            JobResult(job_id=str(device), worker_id="w", loss=1.0, metric=accuracy, num_examples=10, num_steps=1,
                      train_seconds=0.0),
            {},
        )
        for device in completed
    }  # fmt: skip
    return PhaseOutcome(plan, results, frozenset())


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--k", type=float, default=0.01, help="fraction of devices per phase (0.01: 1,000)")
    parser.add_argument("--rounds", type=int, default=1000, help="rounds written for the memory figure")
    parser.add_argument("--timed", type=int, default=50, help="rounds whose write is timed")
    args = parser.parse_args()
    header("device records: time per round and memory over a long run")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        spec = spec_for(args.devices, args.k, Path(folder))
        population = DevicePopulation.draw(spec, 0)
        history = DeviceHistory.empty(args.devices)
        strategies = {kind: PhaseStrategies(getattr(spec.algorithms, kind.value)) for kind in (Phase.FIT, Phase.EVAL)}
        writer = RecordsWriter(spec)
        results = ResultsDocument(spec, "0" * 32)
        writer.write_population(0, population, np.ones((args.devices, 10), dtype=np.int64))
        timings, samples, rows = [], [], []
        for round_ in range(args.rounds):
            conditions = RoundConditions.draw(spec, population, 0, round_)
            state = DeviceState(population, conditions, conditions.energy.copy(), history)
            outcomes = [phase(spec, strategies[kind], round_, kind, state) for kind in (Phase.FIT, Phase.EVAL)]
            rows.append(sum(len(outcome.selected) for outcome in outcomes))
            # results.json keeps every round by design; a fixed 100 here keeps the RSS figure the records' own.
            results.rounds = [*results.rounds[-99:], ROUND]
            # As the loop's _record does: the records, results.json and results.csv, then wait for the records.
            started = time.perf_counter()
            writer.write_round((0, round_), conditions, outcomes, population.data_sizes)
            submitted = time.perf_counter()
            results.write()
            writer.flush()
            recorded = time.perf_counter()
            results.write()  # the same write alone: what the round cost before device records
            alone = time.perf_counter() - recorded
            if round_ < args.timed:
                timings.append((submitted - started, recorded - started - alone))
            del outcomes, state, conditions
            if round_ % max(args.rounds // 10, 1) == 0 or round_ == args.rounds - 1:
                samples.append((round_, rss_mib()))
        on_disk = sum(path.stat().st_size for path in Path(folder).rglob("*.parquet"))
    steady = timings[1:] or timings
    loop_ms = statistics.median(build for build, _ in steady) * 1e3
    median_ms = statistics.median(added for _, added in steady) * 1e3
    print(f"devices {args.devices:,}, k {args.k}: {int(statistics.median(rows)):,} rows a round (fit + eval)")
    print(
        f"rows built on the loop's thread: median {loop_ms:.2f} ms; added to the round's records step (rows, then "
        f"the Parquet writes overlapping results.json's write, minus that write alone): median {median_ms:.2f} ms, "
        f"max {max(added for _, added in steady) * 1e3:.2f} ms over {len(steady)} rounds"
    )
    print("RSS by round: " + ", ".join(f"{round_}: {mib:.0f} MiB" for round_, mib in samples))
    growth = samples[-1][1] - samples[1][1] if len(samples) > 1 else 0.0
    print(f"RSS growth from round {samples[1][0]} to {samples[-1][0]}: {growth:+.1f} MiB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB; on disk {on_disk / 2**20:.1f} MiB")
    print(verdict("records added to a round", median_ms, TARGET_MS, higher_is_better=False, unit=" ms"))
    print(verdict("RSS growth over the run", growth, 10.0, higher_is_better=False, unit=" MiB"))


if __name__ == "__main__":
    main()
