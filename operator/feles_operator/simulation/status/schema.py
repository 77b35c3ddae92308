"""The FelesSimulation's `.status` as pydantic models: the CRD's status schema and the operator's parser."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from feles_operator.conditions import Condition, StatusModel

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL = frozenset({SUCCEEDED, FAILED})
Phase = Literal["Pending", "Running", "Succeeded", "Failed"]


class PodFailure(StatusModel):
    """A pod of the simulation that fails: crash loop, image pull error, eviction, unschedulable."""

    pod: str
    component: str = Field(description="orchestrator or worker.")
    reason: str
    message: str
    restarts: int = 0


class Restarts(StatusModel):
    orchestrator: int = Field(default=0, description="Container restarts of the orchestrator pod.")
    workers: int = Field(default=0, description="Container restarts summed over the worker pods.")


class FelesSimulationStatus(StatusModel):
    """What the operator observed; `kubectl get fsim` shows part of it."""

    phase: Phase | None = Field(default=None, description="Pending, Running, Succeeded or Failed.")
    message: str | None = Field(default=None, description="Why the simulation failed or what it waits for.")
    stop_reason: str | None = Field(default=None, description="RoundsCompleted, TargetAccuracyReached, ...")
    repetition: int | None = Field(default=None, description="Current repetition, from 1.")
    repetitions: int | None = None
    round: int | None = Field(default=None, description="Rounds finished in the current repetition.")
    rounds: int | None = Field(default=None, description="Rounds per repetition (simulation.num_rounds).")
    round_progress: str | None = Field(default=None, description="round/rounds, e.g. 7/50.")
    repetition_progress: str | None = Field(default=None, description="repetition/repetitions, e.g. 1/3.")
    metric: str | None = Field(default=None, description="What metricValue measures: accuracy, mae or mse.")
    metric_value: float | None = Field(default=None, description="The test metric after the last round.")
    accuracy: float | None = Field(
        default=None, description="Test accuracy after the last round (metricValue of an accuracy run, else unset)."
    )
    loss: float | None = Field(default=None, description="Test loss after the last round.")
    simulated_time: float | None = Field(default=None, description="Simulated seconds of this repetition.")
    workers_ready: int | None = Field(default=None, description="Ready worker pods (the scale subresource's).")
    workers_registered: int | None = Field(default=None, description="Workers the orchestrator heard from lately.")
    selector: str | None = Field(default=None, description="Label selector of the worker pods (for HPA).")
    restarts: Restarts | None = None
    pod_failures: list[PodFailure] | None = Field(default=None, description="Failing pods, at most 10.")
    unreachable_since: str | None = Field(
        default=None, description="Since when /v1/status has not answered.", json_schema_extra={"format": "date-time"}
    )
    start_time: str | None = Field(
        default=None, description="When the simulation started.", json_schema_extra={"format": "date-time"}
    )
    completion_time: str | None = Field(
        default=None, description="When it succeeded or failed.", json_schema_extra={"format": "date-time"}
    )
    observed_generation: int | None = Field(default=None, description="The .metadata.generation last acted on.")
    conditions: list[Condition] | None = Field(
        default=None,
        description="Ready, Progressing, Completed and Failed.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )

    @classmethod
    def parse(cls, status: Mapping[str, Any] | None) -> FelesSimulationStatus:
        return cls.model_validate(dict(status or {}))

    def dump(self) -> dict[str, Any]:
        """The status as the API stores it (absent fields omitted)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def metric_text(status: FelesSimulationStatus) -> str:
    """The last test metric by its name, e.g. `test accuracy 0.9123` or `test mae 48.7012` (n/a before any)."""
    name = status.metric or "accuracy"
    value = status.metric_value if status.metric_value is not None else status.accuracy if name == "accuracy" else None
    return f"test {name} {value:.4f}" if value is not None else f"test {name} n/a"


def summary(status: FelesSimulationStatus) -> str:
    """One line on a finished simulation: why it stopped and its last test metrics."""
    loss = f"{status.loss:.4f}" if status.loss is not None else "n/a"
    return (
        f"{status.stop_reason or 'finished'}: {metric_text(status)}, loss {loss} after round "
        f"{status.round_progress} of repetition {status.repetition_progress}"
    )
