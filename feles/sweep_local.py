"""`feles sweep` on this machine: each cell a local run (orchestrator + workers) in its own folder, N at once.

Resumable by construction: before anything runs, each cell's folder is compared with what the cell should be
(`decide`): finished cells are skipped, interrupted ones resume from their checkpoint, the rest start. An
interrupt (Ctrl-C, SIGTERM) stops every running cell's processes; each keeps its last round's checkpoint.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from feles.config import SimulationSpec, spec_to_yaml
from feles.local import LocalRun, LocalRunOptions
from feles.orchestrator.checkpoint import checkpoint_path
from feles.protocol import SimulationStatus
from feles.sweep import (
    CELL_SPEC,
    MANIFEST,
    RESULTS_FILE,
    Cell,
    Objective,
    SweepError,
    SweepSpec,
    manifest,
    sweep_objective,
)


class Action(StrEnum):
    """What a (re-)run does with a cell."""

    SKIP = "skip"  # succeeded before
    SKIP_FAILED = "skip failed"  # failed before (--retry-failed starts it over)
    RESUME = "resume"  # from its checkpoint
    START = "start"  # from round 1 (a stale checkpoint, if any, is discarded)


@dataclass(frozen=True)
class CellState:
    """What a cell's folder holds: the spec it ran (None: none), its results' status, whether a checkpoint."""

    spec: dict[str, Any] | None = None
    results_status: str | None = None
    checkpoint: bool = False


def read_state(folder: Path) -> CellState:
    """The state of a cell's folder (an empty state when the folder does not exist)."""
    spec = None
    if (folder / CELL_SPEC).is_file():
        spec = yaml.safe_load((folder / CELL_SPEC).read_text(encoding="utf-8"))
    status = None
    if (folder / RESULTS_FILE).is_file():
        try:
            status = json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8")).get("status")
        except (ValueError, AttributeError):
            status = None  # unreadable: the run did not finish writing it, so it did not finish
    return CellState(spec, status, checkpoint_path(folder).is_file())


def same_simulation(left: dict[str, Any], right: dict[str, Any]) -> bool:
    """Whether two spec documents describe the same simulation (wherever its results go)."""

    def comparable(document: dict[str, Any]) -> dict[str, Any]:
        simulation = {key: value for key, value in document.get("simulation", {}).items() if key != "output_folder"}
        return {**document, "simulation": simulation}

    return comparable(left) == comparable(right)


def decide(spec: SimulationSpec, state: CellState, fresh: bool = False, retry_failed: bool = False) -> Action:
    """What to do with a cell whose folder is in `state`; SweepError-worthy conflicts raise ValueError.

    A folder that ran another spec (the sweep file changed under it) is never overwritten silently: the
    user chooses --fresh (start every cell over) or another output folder.
    """
    if fresh:
        return Action.START
    if state.spec is not None and not same_simulation(state.spec, spec.model_dump(mode="json")):
        raise ValueError("its folder holds another simulation's spec: use --fresh, or another --output folder")
    if state.results_status == "succeeded":
        return Action.SKIP
    if state.results_status == "failed":
        return Action.START if retry_failed else Action.SKIP_FAILED
    return Action.RESUME if state.checkpoint else Action.START


def plan(cells: list[Cell], folder: Path, fresh: bool = False, retry_failed: bool = False) -> list[tuple[Cell, Action]]:
    """Each cell with what to do; SweepError naming every cell whose folder holds another spec."""
    decisions, conflicts = [], []
    for cell in cells:
        try:
            decisions.append((cell, decide(cell.spec, read_state(folder / cell.name), fresh, retry_failed)))
        except ValueError as error:
            conflicts.append((f"cell {cell.name}", str(error)))
    if conflicts:
        raise SweepError(str(folder), conflicts)
    return decisions


class SweepFolderError(RuntimeError):
    """The sweep's folder cannot hold its cells: the message names it and the reason."""


def folder_problem(folder: Path) -> str | None:
    """Why `folder` cannot become a sweep's folder, as far as can be told without writing anything; None if it can.

    A path under a file, or under a folder this process may not write into, is refused before any cell runs;
    what only writing tells (a read-only or special file system) `SweepRun.prepare` reports the same way.
    """
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return "it is a file, not a folder" if existing == folder else f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable" if existing != folder else "it is not writable"
    return None


def folder_error(folder: Path, reason: object) -> SweepFolderError:
    return SweepFolderError(f"output folder {str(folder)!r} cannot hold the cells: {reason}")


@dataclass(frozen=True)
class SweepRunOptions:
    folder: Path
    parallel: int = 2
    workers_per_run: int = 1
    data_dir: str | None = None
    lease_seconds: float = 120.0
    threads: int = 1
    fresh: bool = False
    retry_failed: bool = False
    stack_jobs: int = 1  # each cell's workers' --stack-jobs (feles run --stack-jobs); 1: off, bit for bit


@dataclass(frozen=True)
class CellProgress:
    """A cell as the live table shows it."""

    name: str
    action: Action
    phase: str = "waiting"
    round: int = 0
    rounds: int = 0
    value: float | None = None  # the test metric after the last round
    metric: str = "accuracy"  # what `value` measures: accuracy, mae or mse
    loss: float | None = None  # the test loss after the last round
    message: str = ""


#: Seconds between two rounds of stopping the running cells after an interrupt.
STOP_POLL_SECONDS = 0.5
#: The phase of a cell stopped mid-run by an interrupt (resumable), and of one an interrupt kept from starting.
INTERRUPTED = "interrupted"
NOT_STARTED = "not started"
#: Phases of a cell that end it in this run.
DONE_PHASES = ("skipped", "Succeeded", "Failed", INTERRUPTED, NOT_STARTED)


class SweepRun:
    """Runs the planned cells, `parallel` at a time, in threads that each follow one local run."""

    def __init__(self, sweep: SweepSpec, cells: list[Cell], options: SweepRunOptions) -> None:
        self.sweep = sweep
        self.objective = sweep_objective(sweep, cells)
        self.options = options
        self.plan = plan(cells, options.folder, options.fresh, options.retry_failed)
        self.progress = {cell.name: _initial(cell, action) for cell, action in self.plan}
        self.running: dict[str, LocalRun] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.prepared = False
        self.launched: set[str] = set()  # the cells whose processes this run started

    def prepare(self) -> None:
        """Write sweep.json and the spec of each cell to run (its folder as output folder) before anything runs.

        The folders of skipped cells stay untouched. SweepFolderError when the folder cannot hold the cells.
        """
        folder = self.options.folder
        problem = folder_problem(folder)
        if problem is not None:
            raise folder_error(folder, problem)
        cells = [cell for cell, _ in self.plan]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / MANIFEST).write_text(json.dumps(manifest(self.sweep, cells), indent=2) + "\n", encoding="utf-8")
            for cell, action in self.plan:
                if action in (Action.START, Action.RESUME):
                    (folder / cell.name).mkdir(exist_ok=True)
                    (folder / cell.name / CELL_SPEC).write_text(spec_to_yaml(self.cell_spec(cell)), encoding="utf-8")
        except OSError as error:
            where = f" ({error.filename})" if error.filename and Path(error.filename) != folder else ""
            raise folder_error(folder, f"{error.strerror or error}{where}") from None
        self.prepared = True

    def cell_spec(self, cell: Cell) -> SimulationSpec:
        spec = cell.spec.model_copy(deep=True)
        spec.simulation.output_folder = str(self.options.folder / cell.name)
        return spec

    def run(self, on_change: Callable[[], None] = lambda: None) -> dict[str, CellProgress]:
        """Run every cell that needs it (prepared first, unless done); on KeyboardInterrupt/SystemExit stop them
        all, then re-raise."""
        if not self.prepared:
            self.prepare()
        pending = [(cell, action) for cell, action in self.plan if action in (Action.START, Action.RESUME)]
        pool = ThreadPoolExecutor(max_workers=self.options.parallel, thread_name_prefix="cell")
        futures: list[Future[None]] = []
        try:
            # Submitted inside the try: a Ctrl-C while the first cells already run must stop them too.
            for cell, action in pending:
                futures.append(pool.submit(self._run_cell, cell, action, on_change))
            wait(futures)
        except BaseException:
            self.stopping.set()
            # A cell may be spawning its processes right now: stop until every thread has returned.
            self.stop_running()
            while wait(futures, timeout=STOP_POLL_SECONDS).not_done:
                self.stop_running()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._mark_interrupted()
            on_change()
        return self.progress

    def stop_running(self) -> None:
        """Stop the running cells' processes (their checkpoints stay: a re-run resumes them)."""
        with self.lock:
            running = list(self.running.values())
        for local in running:
            local.stop()

    def _update(self, name: str, on_change: Callable[[], None], **changes: Any) -> None:
        with self.lock:
            self.progress[name] = replace(self.progress[name], **changes)
        on_change()

    def _run_cell(self, cell: Cell, action: Action, on_change: Callable[[], None]) -> None:
        if self.stopping.is_set():
            return
        config = self.options.folder / cell.name / CELL_SPEC
        options = LocalRunOptions(
            config=config,
            workers=self.options.workers_per_run,
            data_dir=self.options.data_dir,
            lease_seconds=self.options.lease_seconds,
            threads=self.options.threads,
            resume=action is Action.RESUME,
            stack_jobs=self.options.stack_jobs,
        )
        local = LocalRun(options)
        with self.lock:
            self.running[cell.name] = local
        self._update(cell.name, on_change, phase="starting")

        def show(status: SimulationStatus) -> None:
            value = status.metric_value if status.metric_value is not None else self.progress[cell.name].value
            loss = status.loss if status.loss is not None else self.progress[cell.name].loss
            self._update(
                cell.name,
                on_change,
                phase=status.phase.value,
                round=status.round,
                rounds=status.rounds,
                value=value,
                metric=status.metric,
                loss=loss,
            )

        try:
            if self.stopping.is_set():
                return
            with self.lock:
                self.launched.add(cell.name)
            outcome = local.run(show)
            self._update(cell.name, on_change, phase=outcome.status.phase.value, message=outcome.status.message or "")
        except Exception as error:  # one cell's failure, whatever it is, must not end the others
            self._update(cell.name, on_change, phase="Failed", message=str(error).splitlines()[0] if str(error) else "")
        finally:
            with self.lock:
                self.running.pop(cell.name, None)

    def failed_cells(self) -> list[str]:
        """The cells that failed, in this run or before (and were skipped)."""
        return [
            name for name, cell in self.progress.items() if cell.phase == "Failed" or cell.action is Action.SKIP_FAILED
        ]

    def _mark_interrupted(self) -> None:
        """After an interrupt: the cells stopped mid-run are interrupted (whatever their processes said as they were
        stopped: a Ctrl-C also reaches them), those never launched are not started; a re-run does both."""
        if not self.stopping.is_set():
            return
        with self.lock:
            for name, progress in self.progress.items():
                if name not in self.launched:
                    if progress.phase not in DONE_PHASES:
                        self.progress[name] = replace(progress, phase=NOT_STARTED, message="")
                    continue
                failed = progress.phase == "Failed"
                if failed and read_state(self.options.folder / name).results_status == "failed":
                    continue  # it failed on its own before the interrupt
                if progress.phase not in DONE_PHASES or failed:
                    self.progress[name] = replace(progress, phase=INTERRUPTED, message=self._resumes(name))

    def _resumes(self, name: str) -> str:
        """What a re-run does with an interrupted cell, from what its folder holds."""
        if read_state(self.options.folder / name).checkpoint:
            return "a re-run resumes it from its last finished round"
        return "a re-run starts it over (no round finished)"


def _initial(cell: Cell, action: Action) -> CellProgress:
    if action is Action.SKIP:
        return CellProgress(cell.name, action, phase="skipped", message="succeeded before")
    if action is Action.SKIP_FAILED:
        return CellProgress(cell.name, action, phase="skipped", message="failed before (--retry-failed reruns it)")
    return CellProgress(cell.name, action)


def best_finished(progress: dict[str, CellProgress], objective: Objective) -> tuple[CellProgress, float] | None:
    """The cell that succeeded in this run with the best final figure by `objective`, and that figure."""
    scored = []
    for index, cell in enumerate(progress.values()):
        value = cell.loss if objective.metric == "loss" else cell.value if cell.metric == objective.metric else None
        if cell.phase == "Succeeded" and value is not None:
            scored.append((value, index, cell))
    if not scored:
        return None
    value, _, cell = min(scored, key=lambda item: (objective.rank(item[0]), item[1]))
    return cell, value


def progress_table(progress: dict[str, CellProgress], objective: Objective | None = None) -> Table:
    """The live table of cells: phase, round and test metric (headed by its name: accuracy, mae, mse, or metric
    for cells of different ones); the caption counts the cells by phase and, with the sweep's `objective`, names
    the best cell finished so far."""
    phases = [cell.phase for cell in progress.values()]
    caption = ", ".join(f"{phases.count(phase)} {phase.lower()}" for phase in dict.fromkeys(phases))
    best = best_finished(progress, objective) if objective is not None else None
    if best is not None and objective is not None:
        caption += f"; best {objective.metric} {best[1]:.4f}: {best[0].name}"
    table = Table(caption=f"{len(phases)} cells: {caption}", title_justify="left")
    metrics = {cell.metric for cell in progress.values()}
    metric = metrics.pop() if len(metrics) == 1 else "metric"
    for header in ("cell", "phase", "round", metric, ""):
        table.add_column(header, justify="right" if header in ("round", metric) else "left")
    for cell in progress.values():
        rounds = f"{cell.round}/{cell.rounds}" if cell.rounds else ""
        value = f"{cell.value:.4f}" if cell.value is not None else ""
        table.add_row(cell.name, cell.phase, rounds, value, cell.message)
    return table
