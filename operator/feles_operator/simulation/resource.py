"""The FelesSimulation's `.spec` as pydantic models: the source of its CRD schema and the operator's parser."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel

from feles.config import SimulationSpec, SpecError, parse_spec

#: A Kubernetes resource quantity ("500m", "2Gi", 4), as the API server's own schemas spell it.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _quantity(value: int | str) -> int | str:
    if isinstance(value, str) and not re.match(QUANTITY_PATTERN, value):
        raise ValueError(f"{value!r} is not a quantity such as 500m, 2Gi or 4")
    if isinstance(value, int) and value < 0:
        raise ValueError("must not be negative")
    return value


Quantity = Annotated[
    int | str,
    AfterValidator(_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
PullPolicy = Literal["Always", "IfNotPresent", "Never"]


class KubeModel(BaseModel):
    """Kubernetes-style section: camelCase keys, unknown keys are errors, immutable once parsed."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class ResourceRequirements(KubeModel):
    """CPU and memory of a container, as in a pod spec."""

    requests: dict[str, Quantity] | None = Field(default=None, description="Minimum resources, e.g. cpu: 500m.")
    limits: dict[str, Quantity] | None = Field(default=None, description="Maximum resources, e.g. memory: 4Gi.")


class Toleration(KubeModel):
    """A pod toleration, as in a pod spec."""

    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class PodSettings(KubeModel):
    """Scheduling and sizing of one component's pods."""

    resources: ResourceRequirements | None = Field(
        default=None, description="Container resources; absent: the operator's defaults (requests and limits)."
    )
    threads: int | None = Field(
        default=None, ge=1, le=256, description="torch threads per process (default: 2 orchestrator, 1 worker)."
    )
    node_selector: dict[str, str] | None = Field(default=None, description="Node labels the pods must match.")
    tolerations: list[Toleration] | None = Field(default=None, description="Taints the pods tolerate.")


class LocalObjectReference(KubeModel):
    name: str = Field(min_length=1)


class ResultsStorage(KubeModel):
    """Where the orchestrator writes results and checkpoints: an existing PVC, or a new one of `size`."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.claimName) != has(self.size)",
                    "message": "set exactly one of claimName (an existing PersistentVolumeClaim) or size (a new one)",
                },
                {"rule": "!has(self.storageClassName) || has(self.size)", "message": "storageClassName needs size"},
            ]
        }
    )

    claim_name: str | None = Field(default=None, min_length=1, description="An existing PVC (kept after deletion).")
    size: Quantity | None = Field(
        default=None, description="Size of a PVC created for this simulation and deleted with it, e.g. 1Gi."
    )
    storage_class_name: str | None = Field(default=None, min_length=1, description="Storage class of that PVC.")

    @model_validator(mode="after")
    def _one_source(self) -> ResultsStorage:
        if (self.claim_name is None) == (self.size is None):
            raise ValueError("set exactly one of claimName (an existing PersistentVolumeClaim) or size (a new one)")
        if self.storage_class_name is not None and self.size is None:
            raise ValueError("storageClassName needs size")
        return self


class DataStorage(KubeModel):
    """An existing PVC holding dataset files, mounted at /data and passed as --data-dir."""

    claim_name: str = Field(min_length=1, description="The PVC with the dataset files.")
    sub_path: str | None = Field(default=None, min_length=1, description="Folder inside the volume.")
    read_only: bool = Field(default=True, description="Mount read-only.")


class Storage(KubeModel):
    results: ResultsStorage | None = Field(
        default=None, description="Results and checkpoints; absent: an emptyDir, lost with the orchestrator pod."
    )
    data: DataStorage | None = Field(default=None, description="Dataset directory; absent: the image's datasets.")


class FelesSimulationSpec(KubeModel):
    """What to simulate (`simulation`, immutable) and with which pods (the rest)."""

    simulation: SimulationSpec = Field(description="The simulation spec, the same as a `feles run` YAML file.")
    workers: int = Field(default=2, ge=0, le=10_000, description="Worker pods; `kubectl scale` changes it.")
    image: str | None = Field(
        default=None, min_length=1, description="Image of the orchestrator and workers; default: the operator's."
    )
    image_pull_policy: PullPolicy | None = Field(default=None, description="Pull policy of that image.")
    image_pull_secrets: list[LocalObjectReference] | None = Field(default=None, description="Registry credentials.")
    orchestrator: PodSettings | None = Field(default=None, description="The orchestrator pod.")
    worker: PodSettings | None = Field(default=None, description="Every worker pod.")
    storage: Storage | None = Field(default=None, description="Volumes for results and datasets.")


class ResourceError(ValueError):
    """A `.spec` the operator cannot run; `errors` holds (field path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))


def plain(value: Any) -> Any:
    """A JSON-like copy of mappings and lists (kopf hands out read-only views)."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def parse_resource(spec: Mapping[str, Any] | None) -> FelesSimulationSpec:
    """Validate a FelesSimulation's `.spec`, including the rules a CRD schema cannot express.

    Raises ResourceError listing every problem as (`spec.<path>`, message).
    """
    document = plain(spec or {})
    errors: list[tuple[str, str]] = []
    simulation: SimulationSpec | None = None
    if document.get("simulation") is None:
        errors.append(("spec.simulation", "required"))
    else:
        try:
            simulation = parse_spec(document["simulation"], "spec.simulation")
        except SpecError as error:
            errors.extend((f"spec.simulation.{path}", message) for path, message in error.errors)
    rest = {key: value for key, value in document.items() if key != "simulation"}
    try:
        # A default spec stands in for an invalid simulation, whose errors are already collected above,
        # so that only the rest of .spec is reported here.
        parsed = FelesSimulationSpec.model_validate({**rest, "simulation": simulation or SimulationSpec()})
    except ValidationError as error:
        errors.extend((f"spec.{path}" if path != "<root>" else "spec", message) for path, message in _paths(error))
        parsed = None
    if errors or parsed is None:
        raise ResourceError(errors)
    return parsed


def _paths(error: ValidationError) -> list[tuple[str, str]]:
    pairs = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "<root>"
        if item["type"] == "value_error":
            message = item["msg"].removeprefix("Value error, ")
        elif item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = item["msg"]
        else:
            message = f"{item['msg']} (got {item['input']!r})"
        pairs.append((path, message))
    return pairs
