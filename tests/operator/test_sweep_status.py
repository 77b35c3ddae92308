"""A FelesSweep's status from its children, and which cells start next: pure functions, no cluster."""

from __future__ import annotations

import pytest

from feles.sweep import Best
from feles_operator.sweep.status import (
    Child,
    FelesSweepStatus,
    cells_to_create,
    invalid_sweep_status,
    next_sweep_status,
)

GRID = ["a-1", "a-2", "b-1", "b-2"]
NOW = 1_800_000_000.0


def child(cell: str, phase: str | None = None, accuracy: float | None = None) -> Child:
    """A cell of an accuracy run as the operator reports it (accuracy also as status.metricValue)."""
    loss = None if accuracy is None else round(1 - accuracy, 4)
    return Child(cell, f"s-{cell}", phase, accuracy, loss, "accuracy", accuracy)


def mae_child(cell: str, phase: str, mae: float, loss: float) -> Child:
    """A cell of a regression run: no accuracy, its metric is mae."""
    return Child(cell, f"s-{cell}", phase, None, loss, "mae", mae)


def status(children: list[Child], old: FelesSweepStatus | None = None, best: Best | None = None, now: float = NOW):
    objective = (best or Best()).objective("accuracy")
    return next_sweep_status(old or FelesSweepStatus(), "s", GRID, children, objective, 3, now)


def conditions(new: FelesSweepStatus) -> dict[str, tuple[str, str]]:
    return {item.type: (item.status, item.reason) for item in new.conditions or ()}


@pytest.mark.parametrize(
    ("children", "parallelism", "expected"),
    [
        ([], 2, ["a-1", "a-2"]),
        ([child("a-1"), child("a-2", "Running")], 2, []),
        ([child("a-1", "Succeeded"), child("a-2", "Running")], 2, ["b-1"]),
        ([child("a-1", "Failed"), child("a-2", "Succeeded")], 2, ["b-1", "b-2"]),
        ([child("a-1", "Succeeded")], 10, ["a-2", "b-1", "b-2"]),
        ([child("old", "Running")], 1, []),  # an orphan still running holds its place
        ([child("old", "Succeeded")], 1, ["a-1"]),
        ([child(cell, "Succeeded") for cell in GRID], 2, []),
    ],
)
def test_cells_to_create(children: list[Child], parallelism: int, expected: list[str]) -> None:
    assert cells_to_create(GRID, children, parallelism) == expected


def test_nothing_created_yet_is_pending() -> None:
    new = status([])
    assert (new.phase, new.progress, new.running, new.start_time) == ("Pending", "0/4", 0, None)
    assert new.counts is not None and new.counts.waiting == 4
    assert [cell.phase for cell in new.simulations or ()] == ["Waiting"] * 4
    assert new.simulations and new.simulations[0].simulation == "s-a-1"
    assert conditions(new)["Progressing"] == ("True", "CellsRunning")


def test_counts_best_and_conditions_while_running() -> None:
    children = [child("a-1", "Succeeded", 0.8), child("a-2", "Running", 0.95), child("b-1", "Succeeded", 0.7)]
    new = status(children)
    assert (new.phase, new.progress, new.done, new.running, new.cells) == ("Running", "2/4", 2, 1, 4)
    assert new.counts is not None and new.counts.model_dump() == {
        "waiting": 1,
        "pending": 0,
        "running": 1,
        "succeeded": 2,
        "failed": 0,
    }
    # Only finished cells compete: a-2's 0.95 is a running cell's latest round.
    assert new.best is not None and (new.best.cell, new.best.value) == ("a-1", 0.8)
    assert new.best_summary == "accuracy 0.8000 a-1"
    assert new.message == "2/4 cells finished, 1 running, 1 waiting; best accuracy 0.8000 a-1"
    assert new.start_time == "2027-01-15T08:00:00Z" and new.completion_time is None
    assert new.observed_generation == 3
    assert conditions(new) == {
        "Progressing": ("True", "CellsRunning"),
        "Completed": ("False", "CellsRemaining"),
        "Failed": ("False", "NoCellFailed"),
    }


def test_best_by_loss_and_by_min() -> None:
    children = [child("a-1", "Succeeded", 0.8), child("a-2", "Succeeded", 0.9)]
    assert status(children, best=Best(metric="loss")).best.cell == "a-2"  # type: ignore[union-attr]
    assert status(children, best=Best(metric="accuracy", mode="min")).best.cell == "a-1"  # type: ignore[union-attr]
    tie = [child("a-1", "Succeeded", 0.8), child("a-2", "Succeeded", 0.8)]
    assert status(tie).best.cell == "a-1"  # type: ignore[union-attr]


def test_a_regression_sweep_ranks_its_cells_by_the_lowest_error() -> None:
    children = [
        mae_child("a-1", "Succeeded", 52.5, 4200.0),
        mae_child("a-2", "Succeeded", 48.7, 4400.0),
        mae_child("b-1", "Running", 30.0, 1500.0),  # not finished: does not compete
        mae_child("b-2", "Succeeded", 61.0, 4000.0),
    ]
    by_mae = next_sweep_status(FelesSweepStatus(), "s", GRID, children, Best().objective("mae"), 3, NOW)
    assert by_mae.best is not None
    assert (by_mae.best.cell, by_mae.best.metric, by_mae.best.mode, by_mae.best.value) == ("a-2", "mae", "min", 48.7)
    assert by_mae.best_summary == "mae 48.7000 a-2" and by_mae.message.endswith("; best mae 48.7000 a-2")
    cells = {cell.name: cell for cell in by_mae.simulations or ()}
    assert (cells["a-2"].metric, cells["a-2"].metric_value, cells["a-2"].accuracy) == ("mae", 48.7, None)
    same = next_sweep_status(FelesSweepStatus(), "s", GRID, children, Best(metric="mae").objective("mae"), 3, NOW)
    assert same.best == by_mae.best
    by_loss = next_sweep_status(FelesSweepStatus(), "s", GRID, children, Best(metric="loss").objective("mae"), 3, NOW)
    assert by_loss.best is not None and (by_loss.best.cell, by_loss.best.value) == ("b-2", 4000.0)
    # An accuracy objective finds nothing to rank in mae cells: no best rather than a wrong one.
    by_accuracy = next_sweep_status(FelesSweepStatus(), "s", GRID, children, Best().objective("accuracy"), 3, NOW)
    assert by_accuracy.best is None


def test_cells_of_an_older_operator_rank_by_their_accuracy() -> None:
    older = [Child("a-1", "s-a-1", "Succeeded", 0.7, 0.3), Child("a-2", "s-a-2", "Succeeded", 0.9, 0.1)]
    new = next_sweep_status(FelesSweepStatus(), "s", GRID, older, Best().objective("accuracy"), 3, NOW)
    assert new.best is not None and (new.best.cell, new.best.value) == ("a-2", 0.9)


def test_all_succeeded() -> None:
    children = [child(cell, "Succeeded", 0.5 + index / 10) for index, cell in enumerate(GRID)]
    new = status(children)
    assert (new.phase, new.progress, new.running) == ("Succeeded", "4/4", 0)
    assert new.completion_time == "2027-01-15T08:00:00Z"
    assert new.message == "4 cells: 4 succeeded; best accuracy 0.8000 b-2"
    assert conditions(new) == {
        "Progressing": ("False", "AllCellsFinished"),
        "Completed": ("True", "AllCellsSucceeded"),
        "Failed": ("False", "NoCellFailed"),
    }
    # Written once: the same observation later gives the same status (transition times and completion kept).
    assert status(children, old=new, now=NOW + 60).dump() == new.dump()


def test_a_failed_cell_shows_at_once_and_fails_the_sweep_at_the_end() -> None:
    running = status([child("a-1", "Failed"), child("a-2", "Running")])
    assert running.phase == "Running" and conditions(running)["Failed"] == ("True", "CellsFailed")
    failed_condition = next(item for item in running.conditions or () if item.type == "Failed")
    assert failed_condition.message == "failed: a-1"
    done = status([child("a-1", "Failed"), *(child(cell, "Succeeded", 0.9) for cell in GRID[1:])], old=running)
    assert (done.phase, done.message) == ("Failed", "4 cells: 3 succeeded, 1 failed; best accuracy 0.9000 a-2")
    assert conditions(done)["Completed"] == ("False", "CellsFailed")


def test_orphans_are_listed_and_kept_out_of_the_counts() -> None:
    new = status([child("a-1", "Succeeded", 0.9), child("gone", "Succeeded", 0.99), child("old", "Running")])
    assert new.orphaned == ["gone", "old"]
    assert (new.cells, new.done, new.running) == (4, 1, 1)
    assert new.best is not None and new.best.cell == "a-1"


def test_more_cells_after_the_end_reopen_the_sweep() -> None:
    done = status([child(cell, "Succeeded", 0.5) for cell in GRID])
    more = next_sweep_status(
        done,
        "s",
        [*GRID, "c-1"],
        [child(cell, "Succeeded", 0.5) for cell in GRID],
        Best().objective("accuracy"),
        4,
        NOW,
    )
    assert (more.phase, more.progress, more.completion_time) == ("Running", "4/5", None)
    assert more.start_time == done.start_time


def test_invalid_spec() -> None:
    old = status([child("a-1", "Running")])
    new = invalid_sweep_status([("cell a-2: devices.num", "must be >= 1")], old, 4, NOW)
    assert new.phase == "Failed" and new.message == "invalid spec: cell a-2: devices.num: must be >= 1"
    assert conditions(new)["Failed"] == ("True", "InvalidSpec") and new.observed_generation == 4
    assert new.simulations == old.simulations  # what the cells made before reported is kept


def test_parse_and_dump_round_trip() -> None:
    new = status([child("a-1", "Succeeded", 0.8)])
    dumped = new.dump()
    assert "bestSummary" in dumped and "observedGeneration" in dumped and "best_summary" not in dumped
    assert FelesSweepStatus.parse(dumped).dump() == dumped
