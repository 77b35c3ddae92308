"""SimulationSpec: the one schema of YAML files, of the orchestrator's config and of the CR's spec."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Probability = float
#: Bounds of free-text fields: plug-in names (or import paths) and file system paths. Bounded strings
#: also keep the Kubernetes API server's cost estimate of the CRD's CEL rules finite.
NAME_LENGTH = 256
PATH_LENGTH = 4096


class Section(BaseModel):
    """Base of every spec section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StopConditions(Section):
    """Early stopping on the held-out test split; null disables a condition."""

    metric: float | None = Field(default=None, ge=0, le=1, description="Stop when the test metric reaches this value.")
    loss: float | None = Field(default=None, ge=0, description="Stop when the test loss falls to this value.")


class SimulationSection(Section):
    repetitions: int = Field(default=1, ge=1, le=1000, description="Independent runs of the whole simulation.")
    output_folder: str = Field(
        default="output", min_length=1, max_length=PATH_LENGTH, description="Folder for results files."
    )
    output_file: str = Field(
        default="results.json",
        min_length=1,
        max_length=NAME_LENGTH,
        pattern=r"^[^/\\]+\.json$",
        description="Results file name (JSON); the CSV next to it takes the same stem.",
    )
    dataset: str = Field(
        default="fashion_mnist",
        min_length=1,
        max_length=NAME_LENGTH,
        description="Dataset name (fashion_mnist, digits, synthetic, shakespeare) or import path 'pkg.mod:Class'.",
    )
    dataset_params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of the dataset, e.g. alpha and beta of synthetic."
    )
    data_dir: str | None = Field(
        default=None,
        min_length=1,
        max_length=PATH_LENGTH,
        description="Directory of the dataset files; --data-dir and FELES_DATA_DIR override it.",
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=NAME_LENGTH,
        description="Model name (logreg, mlp, cnn, char_gru, char_lstm) or import path; null: the dataset's default.",
    )
    metric: Literal["accuracy"] = Field(default="accuracy", description="Metric evaluated on devices and test split.")
    test_shard_size: int = Field(
        default=1000,
        ge=1,
        le=100_000_000,
        description="Test-split examples per test job: workers evaluate each round's model in shards of this size.",
    )
    num_rounds: int = Field(default=10, ge=1, le=100_000, description="Rounds per repetition.")
    stop_conds: StopConditions = Field(default_factory=StopConditions)
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed of every random stream of the run.")
    initializer: str = Field(
        default="default",
        min_length=1,
        max_length=NAME_LENGTH,
        description="Initial weights: default, xavier_uniform, kaiming_uniform, zeros, or import path.",
    )


class PhaseParams(Section):
    """The amount of work of a phase: local iterations = epochs * ceil(num_examples / batch_size)."""

    k: float = Field(default=0.1, gt=0, le=1, description="Fraction of all devices selected per round.")
    epochs: int = Field(default=1, ge=1, le=10_000, description="Local epochs per job.")
    batch_size: int = Field(default=32, ge=1, le=1_000_000, description="Local mini-batch size.")
    num_examples: int | None = Field(
        default=None, ge=1, description="Local examples per job; null uses all of the device's data."
    )


class PhaseSection(Section):
    selection: str = Field(
        default="random", min_length=1, max_length=NAME_LENGTH, description="Selection strategy name or import path."
    )
    update: str = Field(
        default="static", min_length=1, max_length=NAME_LENGTH, description="Update strategy (E, B, N per device)."
    )
    data: str = Field(
        default="random", min_length=1, max_length=NAME_LENGTH, description="Local data strategy (which examples)."
    )
    aggregation: str | None = Field(
        default=None,
        min_length=1,
        max_length=NAME_LENGTH,
        description="Aggregation (fedavg, fednova, feddyn) or import path; fit phase only; null: the algorithm's own.",
    )
    params: PhaseParams = Field(default_factory=PhaseParams)
    selection_params: dict[str, Any] = Field(default_factory=dict, description="Extra selection parameters.")
    update_params: dict[str, Any] = Field(default_factory=dict, description="Extra update parameters.")
    data_params: dict[str, Any] = Field(default_factory=dict, description="Extra local data parameters.")


class AlgorithmsSection(Section):
    federated_algorithm: str = Field(
        default="fedavg", min_length=1, max_length=NAME_LENGTH, description="Federated algorithm or import path."
    )
    algorithm_params: dict[str, Any] = Field(default_factory=dict, description="Parameters of the algorithm.")
    fit: PhaseSection = Field(default_factory=PhaseSection)
    eval: PhaseSection = Field(default_factory=PhaseSection)
    optimizer: Literal["sgd", "adam"] = Field(default="sgd", description="Local optimizer.")
    learning_rate: float = Field(default=0.05, gt=0, le=10, description="Local learning rate.")
    momentum: float = Field(default=0.0, ge=0, lt=1, description="SGD momentum.")
    weight_decay: float = Field(default=0.0, ge=0, lt=1, description="L2 weight decay of the local optimizer.")


class DevicesSection(Section):
    num: int = Field(default=100, ge=1, le=10_000_000, description="Number of simulated devices.")
    p_available: Probability = Field(default=0.8, gt=0, le=1, description="Probability a device is available.")
    p_fail: Probability = Field(default=0.1, ge=0, lt=1, description="Probability an available device fails.")


class ComputationSection(Section):
    ips_mean: float = Field(default=100, gt=0, description="Mean local iterations per second [iter/s].")
    ips_var: float = Field(default=50, ge=0, description="Half-width of the uniform ips range [iter/s].")


class EnergySection(Section):
    avail_mean: float = Field(default=25_000, ge=0, description="Mean energy available per round [mWh].")
    avail_var: float = Field(default=20_000, ge=0, description="Half-width of the energy range [mWh].")
    pow_comp_s: float = Field(default=100, ge=0, description="Energy per second of computation [mWh/s].")
    pow_net_s: float = Field(default=200, ge=0, description="Energy per second of communication [mWh/s].")


class NetworkSection(Section):
    speed_mean: float = Field(default=100_000, gt=0, description="Mean network speed [parameters/s].")
    speed_var: float = Field(default=70_000, ge=0, description="Half-width of the speed range [parameters/s].")


class DataSection(Section):
    num_examples_mean: int = Field(default=600, ge=1, description="Mean local examples per device.")
    num_examples_var: int = Field(default=0, ge=0, description="Half-width of the local data size range.")
    non_iid_partitions: float = Field(default=0, ge=0, description="Dirichlet alpha of the label skew; 0 means IID.")
    mislabelling_percentage: float = Field(
        default=0, ge=0, lt=1, description="Fraction of each device's labels replaced by a wrong class."
    )


class SimulationSpec(Section):
    """A whole simulation: what to train, how, on which simulated devices."""

    simulation: SimulationSection = Field(default_factory=SimulationSection)
    algorithms: AlgorithmsSection = Field(default_factory=AlgorithmsSection)
    devices: DevicesSection = Field(default_factory=DevicesSection)
    computation: ComputationSection = Field(default_factory=ComputationSection)
    energy: EnergySection = Field(default_factory=EnergySection)
    network: NetworkSection = Field(default_factory=NetworkSection)
    data: DataSection = Field(default_factory=DataSection)

    @model_validator(mode="after")
    def _check_cross_field(self) -> SimulationSpec:
        errors = cross_field_errors(self)
        if errors:
            raise ValueError("\n".join(f"{path}: {message}" for path, message in errors))
        return self


def cross_field_errors(spec: SimulationSpec) -> list[tuple[str, str]]:
    """Rules that involve several fields and so cannot live in a JSON schema."""
    errors: list[tuple[str, str]] = []
    for phase in ("fit", "eval"):
        k = getattr(spec.algorithms, phase).params.k
        if math.floor(k * spec.devices.num + 1e-9) < 1:
            errors.append(
                (
                    f"algorithms.{phase}.params.k",
                    f"k * devices.num = {k} * {spec.devices.num} selects no device (needs at least 1)",
                )
            )
    ranges = [
        ("computation.ips_var", spec.computation.ips_var, spec.computation.ips_mean, "computation.ips_mean", True),
        ("network.speed_var", spec.network.speed_var, spec.network.speed_mean, "network.speed_mean", True),
        ("energy.avail_var", spec.energy.avail_var, spec.energy.avail_mean, "energy.avail_mean", False),
        (
            "data.num_examples_var",
            spec.data.num_examples_var,
            spec.data.num_examples_mean,
            "data.num_examples_mean",
            True,
        ),
    ]
    for path, var, mean, mean_path, strict in ranges:
        if var > mean or (strict and var == mean):
            bound = "smaller than" if strict else "at most"
            errors.append((path, f"must be {bound} {mean_path} ({mean}) so that every draw is positive"))
    return errors


class SpecError(ValueError):
    """A spec that cannot be loaded; `errors` holds (field path, message) pairs."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {path}: {message}" for path, message in errors)
        super().__init__(f"{source}: {len(errors)} error(s)\n{lines}")


def validation_errors(error: ValidationError) -> list[tuple[str, str]]:
    """pydantic errors as (dotted field path, message) pairs."""
    pairs: list[tuple[str, str]] = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        message = item["msg"]
        if item["type"] == "value_error" and not path:
            # Cross-field errors arrive joined in one message: split them back into their own paths.
            text = message.removeprefix("Value error, ")
            for part in text.split("\n"):
                field, _, rule = part.partition(": ")
                pairs.append((field, rule))
            continue
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif "input" in item and item["type"] not in ("missing",):
            message = f"{message} (got {item['input']!r})"
        pairs.append((path or "<root>", message))
    return pairs


def parse_spec(document: Any, source: str = "spec") -> SimulationSpec:
    """Validate a mapping into a SimulationSpec or raise SpecError listing every problem."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise SpecError(source, [("<root>", f"must be a mapping, got {type(document).__name__}")])
    try:
        return SimulationSpec.model_validate(document)
    except ValidationError as error:
        raise SpecError(source, validation_errors(error)) from None


def load_spec(path: str | Path) -> SimulationSpec:
    """Read a YAML spec file, following `import:` chains; later definitions win."""
    path = Path(path)
    return parse_spec(read_yaml_with_imports(path, ()), str(path))


def read_yaml_with_imports(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """The YAML mapping of `path` deep-merged over the files it imports (relative to itself)."""
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(str(p) for p in (*chain, resolved))
        raise SpecError(str(path), [("import", f"import cycle: {cycle}")])
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SpecError(str(path), [("<file>", f"cannot read: {error.strerror or error}")]) from None
    except yaml.YAMLError as error:
        raise SpecError(str(path), [("<yaml>", str(error).replace("\n", " "))]) from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise SpecError(str(path), [("<root>", f"must be a mapping, got {type(document).__name__}")])
    imports = document.pop("import", None)
    if imports is None:
        return document
    if isinstance(imports, str):
        imports = [imports]
    if not isinstance(imports, list) or not all(isinstance(item, str) for item in imports):
        raise SpecError(str(path), [("import", "must be a file name or a list of file names")])
    merged: dict[str, Any] = {}
    for item in imports:
        merged = deep_merge(merged, read_yaml_with_imports(path.parent / item, (*chain, resolved)))
    return deep_merge(merged, document)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; any other value in `override` replaces the one in `base`."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def spec_to_yaml(spec: SimulationSpec) -> str:
    """The spec as YAML, every field explicit, in declaration order."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
