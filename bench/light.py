"""The light workload of issue #13: `feles run` with 2 and 1 workers against a plain single-process torch loop.

Fashion-MNIST, 100 devices of 600 examples split by Dirichlet(0.5), 10 devices a round (fit and eval), 1 local
epoch, batch 32, SGD lr 0.05, model `mlp_small` (784-128-10), 30 rounds, test-split evaluation every round,
every device available and never failing, energy never limiting, 1 torch thread per process. The plain loop is
bench/overhead.py's baseline (same devices, examples, seeds and evaluations, derived with the simulator's own
pure functions), so both sides must end every round with the same test accuracy, which this script checks.

The sides run interleaved (plain, 2 workers, 1 worker; --repeats times) and each figure is the median of the
repeats:
- wall: launch to exit of the process, seconds;
- s/round: (end of round 30 - end of round 1) / 29, from the orchestrator's log lines (the plain loop reports
  its own round ends), so all the work between rounds counts; also printed over the rounds that began once
  every worker had its first job (the same where `feles run` forks its workers from one start-up; where it
  cannot fork, it starts the second of 2 workers on 2 cores once the orchestrator answers);
- first job: launch to the first job a worker receives (the earliest `first job` line of the workers' logs;
  the plain loop: launch to the start of its first local training);
- exit: end of the last round to the exit of `feles run` (the plain loop: to its own exit);
- RSS: peak over the run of the summed resident set of the process and all its children, sampled from /proc
  every 50 ms; PSS (proportional set size) counts pages shared between processes once, sampled every 0.5 s
  (reading smaps_rollup walks the process's page tables: every 50 ms it slowed the rounds it measured by 10 %).
- CPU ms/round: CPU time (user + system, from /proc every 50 ms) of the whole tree over the rounds counted for
  s/round, a round, also printed by role (orchestrator, workers, the rest: `feles run` itself); idle %: the
  share of the machine's CPU time (all cores) left idle over those rounds. On a noisy machine these say where
  a change moved the time when the wall clock cannot: a round that needs less CPU, or fewer idle cores.
- per repeat: the 2-worker wall and round ratios, each against the plain loop run just before it (a drift of
  the machine's speed between repeats moves both sides of such a pair alike).

Usage: python bench/light.py [--repeats 3] [--rounds 30] [--data-dir /usr/share/datasets/fashion-mnist]
(about 4 minutes on 2 quiet cores with 3 repeats; `--baseline SPEC` is bench/overhead.py's plain loop).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from report import header, verdict

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SECONDS = 0.05
#: PSS is read every this many samples (it is costly to read).
PSS_EVERY = 10
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024
ROUND_LINE = re.compile(r"^(\S+ \S+) INFO feles\.orchestrator: repetition \d+ round (\d+)/\d+")
FIRST_JOB_LINE = re.compile(r"^(\S+ \S+) INFO feles\.worker(?:\[[^\]]*\])?: first job ")
#: Targets of issue #13 (ratios are against the plain loop).
TARGETS = {"wall2": 1.0, "wall1": 1.3, "round2": 0.6, "first_job": 3.0, "exit": 0.3, "rss_gib": 1.2}


def light_spec(output_folder: Path, rounds: int) -> dict:
    """The workload as a spec document."""

    def phase() -> dict:  # a new dict each: YAML aliases are not allowed in a spec
        return {"params": {"k": 0.1, "epochs": 1, "batch_size": 32}}

    return {
        "simulation": {
            "dataset": "fashion_mnist",
            "model": "mlp_small",
            "num_rounds": rounds,
            "seed": 13,
            "output_folder": str(output_folder),
        },
        "algorithms": {
            "federated_algorithm": "fedavg",
            "optimizer": "sgd",
            "learning_rate": 0.05,
            "fit": phase(),
            "eval": phase(),
        },
        "devices": {"num": 100, "p_available": 1.0, "p_fail": 0.0, "energy_failures": False},
        "data": {"num_examples_mean": 600, "num_examples_var": 0, "non_iid_partitions": 0.5},
    }


@dataclass(frozen=True)
class Figures:
    wall: float
    per_round: float
    #: Seconds per round over the rounds that began once every worker had its first job (where workers are
    #: separate processes, `feles run` starts the second of 2 on 2 cores once the orchestrator answers).
    all_workers_round: float
    first_job: float
    exit: float
    rss: float  # bytes
    pss: float  # bytes
    #: CPU seconds a steady round of the orchestrator, of the workers together and of the rest of the tree.
    cpu_orchestrator: float
    cpu_workers: float
    cpu_other: float
    #: Share of the machine's CPU time left idle over the steady rounds (any process of the machine counts).
    idle: float
    accuracies: list[float]


@dataclass(frozen=True)
class CpuSample:
    at: float
    #: CPU seconds so far of the tree's processes by role (orchestrator, workers, other).
    by_role: dict[str, float]
    #: Idle seconds so far of the whole machine, all cores together.
    idle: float


class TreeSampler:
    """Samples a process and its descendants until stopped: the peaks of their summed RSS and PSS, and their CPU
    time by role (with the machine's idle time), to be read over any span of the run."""

    def __init__(self, pid: int) -> None:
        self.pid, self.rss, self.pss = pid, 0, 0
        self.cpu: list[CpuSample] = []
        self._seen: dict[int, tuple[str, float]] = {}  # pid -> role, CPU seconds (kept once it exits)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        count = 0
        while not self._stop.wait(SAMPLE_SECONDS):
            pids = _tree(self.pid)
            self.rss = max(self.rss, sum(_rss(pid) for pid in pids))
            if count % PSS_EVERY == 0:
                self.pss = max(self.pss, sum(_pss(pid) for pid in pids))
            self._sample_cpu(pids)
            count += 1

    def _sample_cpu(self, pids: list[int]) -> None:
        for pid in pids:
            seconds = _cpu_seconds(pid)
            if seconds is not None:
                known = self._seen.get(pid)
                # A child of `feles run` sampled between its fork and its exec still shows the parent's command
                # line: "other" is looked at again (it once put a worker's CPU under `feles run`).
                role = known[0] if known is not None and known[0] != "other" else _role(pid)
                self._seen[pid] = (role, seconds)
        by_role = dict.fromkeys(ROLES, 0.0)
        for role, seconds in self._seen.values():
            by_role[role] += seconds
        self.cpu.append(CpuSample(time.time(), by_role, _machine_idle_seconds()))

    def over(self, start: float, end: float) -> tuple[dict[str, float], float]:
        """CPU seconds by role between the samples nearest `start` and `end`, and the machine's idle share."""
        first = min(self.cpu, key=lambda sample: abs(sample.at - start))
        last = min(self.cpu, key=lambda sample: abs(sample.at - end))
        spent = {role: last.by_role[role] - first.by_role[role] for role in ROLES}
        span = (last.at - first.at) * (os.cpu_count() or 1)
        return spent, (last.idle - first.idle) / span if span > 0 else float("nan")


#: What each process of the tree is, for its CPU time.
ROLES = ("orchestrator", "workers", "other")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _role(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "other"
    if b"orchestrator" in command:
        return "orchestrator"
    return "workers" if b"worker" in command else "other"


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (None once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _machine_idle_seconds() -> float:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / CLOCK_TICKS  # idle + iowait, all cores


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except (OSError, IndexError):
        return 0


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _log_time(stamp: str) -> float:
    """A logging timestamp (local time, milliseconds after a comma) as seconds since the epoch."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def launch(command: list[str]) -> tuple[float, float, str, TreeSampler]:
    """Run a command to its end: launch and exit times, its standard output, its memory and CPU samples."""
    launched = time.time()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(process.pid)
    stdout, stderr = process.communicate()
    exited = time.time()
    sampler.stop()
    if process.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({process.returncode}):\n{stderr[-3000:]}")
    return launched, exited, stdout, sampler


def cpu_figures(sampler: TreeSampler, ends: list[float]) -> dict[str, float]:
    """CPU seconds a round by role and the machine's idle share, from the first round's end to the last's."""
    spent, idle = sampler.over(ends[0], ends[-1])
    rounds = max(len(ends) - 1, 1)
    return {f"cpu_{role}": seconds / rounds for role, seconds in spent.items()} | {"idle": idle}


def run_plain(spec: Path, data: list[str]) -> Figures:
    command = [sys.executable, str(ROOT / "bench" / "overhead.py"), "--baseline", str(spec), *data]
    launched, exited, stdout, sampler = launch(command)
    plain = json.loads(stdout)
    ends = plain["round_ends"]
    per_round = (ends[-1] - ends[0]) / max(len(ends) - 1, 1)
    return Figures(
        wall=exited - launched,
        per_round=per_round,
        all_workers_round=per_round,
        first_job=plain["first_job_at"] - launched,
        exit=exited - ends[-1],
        rss=sampler.rss,
        pss=sampler.pss,
        **cpu_figures(sampler, ends),
        accuracies=plain["accuracies"],
    )


def run_feles(spec: Path, workers: int, data: list[str]) -> Figures:
    command = [sys.executable, "-m", "feles", "run", str(spec), "--workers", str(workers), *data]
    launched, exited, _, sampler = launch(command)
    output = Path(yaml.safe_load(spec.read_text())["simulation"]["output_folder"])
    ends = [_log_time(m[1]) for m in map(ROUND_LINE.match, _lines(output / "logs" / "orchestrator.log")) if m]
    firsts = [
        _log_time(m[1])
        for index in range(workers)
        for m in map(FIRST_JOB_LINE.match, _lines(output / "logs" / f"worker-{index}.log"))
        if m
    ]
    rounds = json.loads((output / "results.json").read_text())["rounds"]
    return Figures(
        wall=exited - launched,
        per_round=(ends[-1] - ends[0]) / max(len(ends) - 1, 1),
        all_workers_round=_rounds_after(ends, max(firsts, default=ends[0])),
        first_job=min(firsts) - launched if firsts else float("nan"),
        exit=exited - ends[-1],
        rss=sampler.rss,
        pss=sampler.pss,
        **cpu_figures(sampler, ends),
        accuracies=[row["test_accuracy"] for row in rounds],
    )


def _rounds_after(ends: list[float], moment: float) -> float:
    """Seconds per round over the rounds that began (the previous round ended) at or after `moment`."""
    begun = [end for end in ends if end >= moment]
    return (begun[-1] - begun[0]) / (len(begun) - 1) if len(begun) > 1 else float("nan")


def _lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.exists() else []


def median(runs: list[Figures]) -> Figures:
    """Each figure's median over the runs (accuracies: the first run's; every run's must be equal)."""
    figures = [name for name in Figures.__dataclass_fields__ if name != "accuracies"]
    pick = {name: statistics.median(getattr(run, name) for run in runs) for name in figures}
    return Figures(**pick, accuracies=runs[0].accuracies)


def paired_ratios(sides: dict[str, list[Figures]], figure: str) -> str:
    """2 workers over the plain loop, repeat by repeat: each pair ran back to back, so a drift of the machine's
    speed between repeats (20 % within minutes on some machines) moves both sides of a ratio alike."""
    pairs = zip(sides["feles 2 workers"], sides["plain loop"], strict=True)
    return ", ".join(f"{getattr(two, figure) / getattr(plain, figure):.2f}" for two, plain in pairs)


def describe(name: str, figures: Figures) -> str:
    cpu = figures.cpu_orchestrator + figures.cpu_workers + figures.cpu_other
    return (
        f"{name:<16} {figures.wall:7.2f} {figures.per_round:9.3f} {figures.first_job:9.2f} {figures.exit:6.2f}"
        f" {figures.rss / MIB:9.0f} {figures.pss / MIB:9.0f} {figures.accuracies[-1]:9.4f}"
        f" {cpu * 1000:10.1f} {figures.idle * 100:6.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Runs of each side; medians are reported.")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--baseline", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    header("light: feles run (2 and 1 workers) vs a plain single-process torch loop, issue #13's workload")
    sides: dict[str, list[Figures]] = {"plain loop": [], "feles 2 workers": [], "feles 1 worker": []}
    with tempfile.TemporaryDirectory(prefix="feles-light-") as folder:
        spec = Path(folder) / "light.yaml"
        spec.write_text(yaml.safe_dump(light_spec(Path(folder) / "out", args.rounds)))
        print(f"spec: {json.dumps(yaml.safe_load(spec.read_text()))}")
        print(f"runs: {shlex.join([sys.executable, '-m', 'feles', 'run', str(spec), '--workers', 'N', *data])}")
        for attempt in range(args.repeats):
            sides["plain loop"].append(run_plain(spec, data))
            sides["feles 2 workers"].append(run_feles(spec, 2, data))
            sides["feles 1 worker"].append(run_feles(spec, 1, data))
            print(f"  repeat {attempt + 1}: " + ", ".join(f"{n} {r[-1].wall:.1f} s" for n, r in sides.items()))
    medians = {name: median(runs) for name, runs in sides.items()}
    reference = sides["plain loop"][0].accuracies
    same = all(run.accuracies == reference for runs in sides.values() for run in runs)
    print(f"same test accuracy every round on every side and repeat: {'yes' if same else 'NO'}")
    print(f"medians of {args.repeats}:")
    print(f"{'side':<16} {'wall s':>7} {'s/round':>9} {'1st job s':>9} {'exit s':>6} {'RSS MiB':>9} {'PSS MiB':>9}"
          f" {'accuracy':>9} {'CPU ms/rd':>10} {'idle %':>6}")  # fmt: skip
    for name, figures in medians.items():
        print(describe(name, figures))
    plain, two, one = medians["plain loop"], medians["feles 2 workers"], medians["feles 1 worker"]
    print(verdict("wall, 2 workers / plain", two.wall / plain.wall, TARGETS["wall2"], higher_is_better=False))
    print(f"  per repeat (each against the plain loop run just before it): {paired_ratios(sides, 'wall')}")
    print(verdict("wall, 1 worker / plain", one.wall / plain.wall, TARGETS["wall1"], higher_is_better=False))
    print(verdict("s/round, 2 workers / plain", two.per_round / plain.per_round, TARGETS["round2"], False))
    print(f"  per repeat (each against the plain loop run just before it): {paired_ratios(sides, 'per_round')}")
    print(f"s/round once both workers run, 2 workers / plain: {two.all_workers_round / plain.per_round:.2f}")
    print(verdict("launch to first job, 2 workers", two.first_job, TARGETS["first_job"], False, unit=" s"))
    print(verdict("last round to exit, 2 workers", two.exit, TARGETS["exit"], False, unit=" s"))
    print(verdict("peak RSS of the tree, 2 workers", two.rss / 1024**3, TARGETS["rss_gib"], False, unit=" GiB"))
    for name, figures in (("2 workers", two), ("1 worker", one)):
        print(
            f"CPU a steady round, {name}: orchestrator {figures.cpu_orchestrator * 1000:.1f} ms, workers"
            f" {figures.cpu_workers * 1000:.1f} ms, feles run {figures.cpu_other * 1000:.1f} ms; plain loop"
            f" {plain.cpu_other * 1000:.1f} ms; machine idle {figures.idle * 100:.1f} % (plain loop"
            f" {plain.idle * 100:.1f} %)"
        )


if __name__ == "__main__":
    main()
