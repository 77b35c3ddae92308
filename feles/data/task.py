"""What a dataset asks its model to learn, classification or regression, and the spec fields that must fit it."""

from __future__ import annotations

from typing import Literal

from feles.config import SimulationSpec

Task = Literal["classification", "regression"]

#: The metrics that measure each task (simulation.metric).
TASK_METRICS: dict[Task, tuple[str, ...]] = {"classification": ("accuracy",), "regression": ("mae", "mse")}


def task_errors(dataset: str, task: Task, spec: SimulationSpec) -> list[tuple[str, str]]:
    """(field path, message) for each setting of `spec` that makes no sense on a `task` dataset."""
    errors = []
    metric = spec.simulation.metric
    if metric not in TASK_METRICS[task]:
        fitting = " or ".join(TASK_METRICS[task])
        errors.append(("simulation.metric", f"{metric} does not measure {task} (dataset {dataset!r}); use {fitting}"))
    if task == "regression":
        # Both act on class labels: a continuous target has no classes to skew or to swap.
        if spec.data.non_iid_partitions > 0:
            errors.append(
                ("data.non_iid_partitions", f"label skew needs classes; dataset {dataset!r} is a regression task")
            )
        if spec.data.mislabelling_percentage > 0:
            errors.append(
                (
                    "data.mislabelling_percentage",
                    f"mislabelling needs classes; dataset {dataset!r} is a regression task",
                )
            )
    return errors
