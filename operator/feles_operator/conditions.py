"""Standard Kubernetes conditions (metav1.Condition) in any kind's `.status`: the model and how they change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from feles_operator.timestamps import rfc3339


class StatusModel(BaseModel):
    """camelCase keys; unknown keys of a stored status are ignored rather than fatal."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    @classmethod
    def parse(cls, status: Mapping[str, Any] | None) -> Self:
        """A stored status (kopf's view, or a dict from the API); None: an empty one."""
        return cls.model_validate(dict(status or {}))

    def dump(self) -> dict[str, Any]:
        """The status as the API stores it (absent fields omitted)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Condition(StatusModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str = Field(description="Ready, Progressing, Completed or Failed.")
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(description="CamelCase reason, e.g. RoundsCompleted or CrashLoopBackOff.")
    message: str = Field(description="Human-readable details.")
    last_transition_time: str = Field(json_schema_extra={"format": "date-time"})
    observed_generation: int | None = None


class WithConditions(Protocol):
    """A status with a list of conditions (None: none yet)."""

    @property
    def conditions(self) -> Sequence[Condition] | None: ...


def condition(
    type_: str, status: bool | None, reason: str, message: str, now: float, generation: int | None
) -> Condition:
    text = "Unknown" if status is None else ("True" if status else "False")
    return Condition(
        type=type_,
        status=text,
        reason=reason,
        message=message,
        last_transition_time=rfc3339(now),
        observed_generation=generation,
    )


def merge_conditions(old: Iterable[Condition] | None, new: Iterable[Condition]) -> list[Condition]:
    """`new`, keeping each old condition's lastTransitionTime when its status did not change."""
    previous = {item.type: item for item in old or ()}
    merged = []
    for item in new:
        before = previous.get(item.type)
        if before is not None and before.status == item.status:
            item = item.model_copy(update={"last_transition_time": before.last_transition_time})
        merged.append(item)
    return merged


def get_condition(status: WithConditions, type_: str) -> Condition | None:
    return next((item for item in status.conditions or () if item.type == type_), None)
