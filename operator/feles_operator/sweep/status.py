"""`.status` of a FelesSweep: its model, and the pure functions that compute it from the sweep's children.

The children are the cells' FelesSimulations; their phases flow up (`next_sweep_status`), and the same
observation says which cells to create next (`cells_to_create`: at most `parallelism` unfinished at once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from feles.sweep import Objective
from feles_operator.conditions import Condition, StatusModel, condition, merge_conditions
from feles_operator.simulation.status.schema import FAILED, PENDING, RUNNING, SUCCEEDED, TERMINAL, Phase
from feles_operator.sweep import names
from feles_operator.timestamps import rfc3339

PROGRESSING, COMPLETED, FAILED_CONDITION = "Progressing", "Completed", "Failed"
#: A cell whose FelesSimulation is not created yet (parallelism).
WAITING = "Waiting"


@dataclass(frozen=True)
class Child:
    """What the sweep sees of one cell's FelesSimulation."""

    cell: str
    name: str
    phase: str | None = None
    accuracy: float | None = None
    loss: float | None = None
    metric: str | None = None
    metric_value: float | None = None

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Child:
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        cell = (meta.get("labels") or {}).get(names.CELL_LABEL, meta.get("name", ""))
        return cls(
            cell,
            meta.get("name", ""),
            status.get("phase"),
            status.get("accuracy"),
            status.get("loss"),
            status.get("metric"),
            status.get("metricValue"),
        )

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL


class Counts(StatusModel):
    """Cells by phase (Waiting: its FelesSimulation is not created yet)."""

    waiting: int = 0
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0


class CellStatus(StatusModel):
    """One cell: its FelesSimulation and what that reports."""

    name: str = Field(description="The cell's name, from its axis values.")
    simulation: str = Field(description="Its FelesSimulation.")
    phase: str = Field(description="Waiting (not created yet), Pending, Running, Succeeded or Failed.")
    metric: str | None = Field(default=None, description="What metricValue measures: accuracy, mae or mse.")
    metric_value: float | None = Field(default=None, description="Its test metric after its last round.")
    accuracy: float | None = Field(default=None, description="Test accuracy after its last round (accuracy runs).")
    loss: float | None = Field(default=None, description="Test loss after its last round.")

    def figure(self, metric: str) -> float | None:
        """Its final test `metric` (accuracy, mae, mse) or loss; None when it does not measure that one."""
        if metric == "loss":
            return self.loss
        if self.metric is None and metric == "accuracy":
            return self.accuracy  # a FelesSimulation of an operator older than status.metric
        return self.metric_value if self.metric == metric else None


class BestCell(StatusModel):
    """The best finished cell by `spec.best`."""

    cell: str
    simulation: str
    metric: str = Field(description="What ranks the cells: accuracy, mae, mse or loss.")
    mode: str | None = Field(default=None, description="max (higher is better) or min.")
    value: float


class FelesSweepStatus(StatusModel):
    """The grid's progress; `kubectl get fsweep` shows part of it."""

    phase: Phase | None = Field(default=None, description="Pending, Running, Succeeded or Failed.")
    message: str | None = Field(default=None, description="Progress, the best cell, or why the sweep failed.")
    cells: int | None = Field(default=None, description="Cells of the grid.")
    done: int | None = Field(default=None, description="Cells finished (Succeeded or Failed).")
    running: int | None = Field(default=None, description="FelesSimulations not finished (parallelism caps it).")
    progress: str | None = Field(default=None, description="done/cells, e.g. 7/18.")
    counts: Counts | None = None
    best: BestCell | None = None
    best_summary: str | None = Field(default=None, description="The best cell's metric and name.")
    simulations: list[CellStatus] | None = Field(default=None, description="The cells of the grid, in grid order.")
    orphaned: list[str] | None = Field(
        default=None, description="Cells no longer in the grid (the axes changed): their FelesSimulations are kept."
    )
    start_time: str | None = Field(
        default=None, description="When the first cell was created.", json_schema_extra={"format": "date-time"}
    )
    completion_time: str | None = Field(
        default=None, description="When the last cell finished.", json_schema_extra={"format": "date-time"}
    )
    observed_generation: int | None = Field(default=None, description="The .metadata.generation last acted on.")
    conditions: list[Condition] | None = Field(
        default=None,
        description="Progressing, Completed and Failed.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


def cells_to_create(grid: Sequence[str], children: Sequence[Child], parallelism: int) -> list[str]:
    """The grid's cells without a FelesSimulation that may start now: at most `parallelism` unfinished at once.

    Every unfinished child counts, orphans too (they still run); cells start in grid order.
    """
    existing = {child.cell for child in children}
    free = max(parallelism - sum(not child.finished for child in children), 0)
    return [cell for cell in grid if cell not in existing][:free]


def next_sweep_status(
    old: FelesSweepStatus,
    sweep: str,
    grid: Sequence[str],
    children: Sequence[Child],
    objective: Objective,
    generation: int | None,
    now: float,
) -> FelesSweepStatus:
    """The status of the sweep `sweep` whose grid is `grid` (cell names, in order) given its children; the best
    cell by `objective` (the spec's `best` resolved against the cells' metric, `feles.sweep.sweep_objective`)."""
    by_cell = {child.cell: child for child in children}
    cells = [_cell_status(sweep, cell, by_cell.get(cell)) for cell in grid]
    counts = Counts(
        waiting=sum(cell.phase == WAITING for cell in cells),
        pending=sum(cell.phase == PENDING for cell in cells),
        running=sum(cell.phase == RUNNING for cell in cells),
        succeeded=sum(cell.phase == SUCCEEDED for cell in cells),
        failed=sum(cell.phase == FAILED for cell in cells),
    )
    done = counts.succeeded + counts.failed
    finished = bool(grid) and done == len(grid)
    phase = _phase(finished, counts, bool(children))
    top = best_cell(cells, objective)
    new = FelesSweepStatus(
        phase=phase,
        cells=len(grid),
        done=done,
        running=sum(not child.finished for child in children),
        progress=f"{done}/{len(grid)}",
        counts=counts,
        best=top,
        best_summary=f"{top.metric} {top.value:.4f} {top.cell}" if top else None,
        simulations=cells,
        orphaned=sorted(child.cell for child in children if child.cell not in set(grid)) or None,
        start_time=old.start_time or (rfc3339(now) if children else None),
        completion_time=(old.completion_time or rfc3339(now)) if finished else None,
        observed_generation=generation,
    )
    new.message = _message(new, counts)
    new.conditions = merge_conditions(old.conditions, _conditions(new, counts, generation, now))
    return new


def invalid_sweep_status(
    errors: list[tuple[str, str]], old: FelesSweepStatus, generation: int | None, now: float
) -> FelesSweepStatus:
    """Failed before any cell runs: the spec (or a cell's spec) breaks a rule. Cells already made are kept."""
    message = "invalid spec: " + "; ".join(f"{where}: {rule}" for where, rule in errors)
    new = old.model_copy(update={"phase": FAILED, "message": message, "observed_generation": generation})
    conditions = [
        condition(PROGRESSING, False, "InvalidSpec", message, now, generation),
        condition(COMPLETED, False, "InvalidSpec", message, now, generation),
        condition(FAILED_CONDITION, True, "InvalidSpec", message, now, generation),
    ]
    new.conditions = merge_conditions(old.conditions, conditions)
    return new


def best_cell(cells: Sequence[CellStatus], objective: Objective) -> BestCell | None:
    """The succeeded cell with the best final figure by `objective` (the first in grid order among equals)."""
    scored = [
        (cell.figure(objective.metric), index, cell) for index, cell in enumerate(cells) if cell.phase == SUCCEEDED
    ]
    scored = [item for item in scored if item[0] is not None]
    if not scored:
        return None
    value, _, cell = min(scored, key=lambda item: (objective.rank(item[0]), item[1]))
    return BestCell(
        cell=cell.name, simulation=cell.simulation, metric=objective.metric, mode=objective.mode, value=value
    )


def _phase(finished: bool, counts: Counts, started: bool) -> str:
    if finished:
        return FAILED if counts.failed else SUCCEEDED
    return RUNNING if started else PENDING


def _cell_status(sweep: str, cell: str, child: Child | None) -> CellStatus:
    if child is None:
        return CellStatus(name=cell, simulation=names.simulation_name(sweep, cell), phase=WAITING)
    return CellStatus(
        name=cell,
        simulation=child.name,
        phase=child.phase or PENDING,
        metric=child.metric,
        metric_value=child.metric_value,
        accuracy=child.accuracy,
        loss=child.loss,
    )


def _message(status: FelesSweepStatus, counts: Counts) -> str:
    best = f"; best {status.best_summary}" if status.best else ""
    if status.phase in TERMINAL:
        failed = f", {counts.failed} failed" if counts.failed else ""
        return f"{status.cells} cells: {counts.succeeded} succeeded{failed}{best}"
    return (
        f"{status.progress} cells finished, {counts.pending + counts.running} running, {counts.waiting} waiting{best}"
    )


def _conditions(status: FelesSweepStatus, counts: Counts, generation: int | None, now: float) -> list[Condition]:
    finished = status.phase in TERMINAL
    message = status.message or ""
    if finished:
        progressing = condition(PROGRESSING, False, "AllCellsFinished", message, now, generation)
    else:
        progressing = condition(PROGRESSING, True, "CellsRunning", message, now, generation)
    if status.phase == SUCCEEDED:
        completed = condition(COMPLETED, True, "AllCellsSucceeded", message, now, generation)
    else:
        completed = condition(
            COMPLETED, False, "CellsFailed" if finished else "CellsRemaining", message, now, generation
        )
    failed_cells = [cell.name for cell in status.simulations or () if cell.phase == FAILED]
    if failed_cells:
        failed = condition(FAILED_CONDITION, True, "CellsFailed", "failed: " + ", ".join(failed_cells), now, generation)
    else:
        failed = condition(FAILED_CONDITION, False, "NoCellFailed", "no cell failed", now, generation)
    return [progressing, completed, failed]
