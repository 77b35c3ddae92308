"""SimulationSpec: the one schema of YAML files, of the orchestrator's config and of the CR's spec."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError, model_validator
from pydantic_core import PydanticCustomError


def not_a_boolean(value: Any) -> Any:
    # pydantic's lax mode reads true as 1: `devices: {num: true}` would be one device, not an error.
    if isinstance(value, bool):
        raise PydanticCustomError("number_not_boolean", "Input should be a number, not a boolean")
    return value


#: Numbers refuse booleans and nothing else: an int where a float is expected, and a YAML `1e3` (a string to
#: YAML 1.1), stay valid. Booleans are strict: a string ("no") or a number is not taken for one.
Int = Annotated[int, BeforeValidator(not_a_boolean)]
Float = Annotated[float, BeforeValidator(not_a_boolean)]
OptionalInt = Annotated[int | None, BeforeValidator(not_a_boolean)]
OptionalFloat = Annotated[float | None, BeforeValidator(not_a_boolean)]
Bool = Annotated[bool, Strict()]
Probability = Float

#: Bounds of free-text fields: plug-in names (or import paths) and file system paths. Bounded strings
#: also keep the Kubernetes API server's cost estimate of the CRD's CEL rules finite.
NAME_LENGTH = 256
PATH_LENGTH = 4096
#: Largest spec file read (a spec is a few KiB; a larger file is a mistake or an attack).
MAX_SPEC_BYTES = 1024 * 1024
#: Longest echo of a bad value in an error message.
MAX_ECHO_CHARS = 80
#: Memory a simulation's device data may need, estimated by `memory_estimate` (refused beyond it).
MEMORY_BUDGET_BYTES = 32 * 1024**3
#: Bytes per local example of every device (partition index and label, int64 each) and per device (its
#: population, history, round draws and records).
BYTES_PER_EXAMPLE = 16
BYTES_PER_DEVICE = 512
#: Largest number of local examples of one device, and of one job.
MAX_LOCAL_EXAMPLES = 10_000_000


#: Each local optimizer's learning rate when the spec gives none: Keras's defaults, which the original FELES used.
DEFAULT_LEARNING_RATES: dict[str, float] = {"sgd": 0.01, "adam": 0.001, "rmsprop": 0.001, "adagrad": 0.001}

#: The built-in plug-in names, by spec key: a name without ':' must be one of them. Kept here, at the bottom
#: layer, so that `feles validate` and the operator's admission (which imports only feles.config) refuse an
#: unknown name before a run starts; tests/unit/test_bad_input.py checks them against the registries.
BUILTIN_NAMES: dict[str, frozenset[str]] = {
    "dataset": frozenset(
        {"cifar10", "cifar100", "diabetes", "digits", "emnist", "fashion_mnist", "mnist", "shakespeare", "synthetic"}
    ),
    "model": frozenset(
        {
            "char_gru",
            "char_lstm",
            "char_lstm_onehot",
            "cnn",
            "cnn_batchnorm",
            "cnn_keras_tutorial",
            "logreg",
            "mlp",
            "mlp_small",
            "regression_mlp",
        }
    ),
    "initializer": frozenset({"default", "kaiming_uniform", "xavier_uniform", "zeros"}),
    "federated_algorithm": frozenset({"fedavg", "feddyn", "fednova", "fedprox", "scaffold"}),
    "aggregation": frozenset({"fedavg", "feddyn", "fednova"}),
    "selection": frozenset(
        {
            "best_energy",
            "best_ips",
            "best_net_speed",
            "best_round_time",
            "best_time_expected",
            "budgeted_fairness_rotation",
            "budgeted_time_rotation",
            "dynamic_sampling",
            "limited_consumption",
            "limited_time",
            "loss_and_fairness",
            "random",
            "ucb_cs",
        }
    ),
    "update": frozenset({"bestrt", "equal_computation_time", "static", "uniform"}),
    "data": frozenset({"random"}),
}


_KIND_LABELS = {
    "dataset": "dataset",
    "model": "model",
    "initializer": "initializer",
    "federated_algorithm": "federated algorithm",
    "aggregation": "aggregation strategy",
    "selection": "selection strategy",
    "update": "update strategy",
    "data": "local data strategy",
}


def unknown_name_errors(spec: SimulationSpec) -> list[tuple[str, str]]:
    """Plug-in names that are neither built in nor an import path `package.module:Name`."""
    named = [
        ("simulation.dataset", "dataset", spec.simulation.dataset),
        ("simulation.model", "model", spec.simulation.model),
        ("simulation.initializer", "initializer", spec.simulation.initializer),
        ("algorithms.federated_algorithm", "federated_algorithm", spec.algorithms.federated_algorithm),
        ("algorithms.fit.aggregation", "aggregation", spec.algorithms.fit.aggregation),
    ]
    for phase in ("fit", "eval"):
        section = getattr(spec.algorithms, phase)
        named += [
            (f"algorithms.{phase}.{kind}", kind, getattr(section, kind)) for kind in ("selection", "update", "data")
        ]
    errors = []
    for path, kind, name in named:
        if name is None or ":" in name or name in BUILTIN_NAMES[kind]:
            continue
        known = ", ".join(sorted(BUILTIN_NAMES[kind]))
        message = (
            f"unknown {_KIND_LABELS[kind]} {_echo(name)}; known: {known} (or an import path 'package.module:Name')"
        )
        errors.append((path, message))
    return errors


class Section(BaseModel):
    """Base of every spec section: unknown keys are errors, values are validated on assignment."""

    # No NaN or infinity anywhere: every bound below assumes finite numbers.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class StopConditions(Section):
    """Early stopping; null disables a condition."""

    metric: OptionalFloat = Field(
        default=None,
        ge=0,
        description="Stop when the metric reaches this value (accuracy: at least it; mae, mse: at most it).",
    )
    loss: OptionalFloat = Field(default=None, ge=0, description="Stop when the loss falls to this value.")
    target: Literal["test", "eval"] = Field(
        default="test",
        description="What the conditions watch: the held-out test split (test) or the federated evaluation of "
        "the round's eval devices (eval, the original FELES).",
    )


class SimulationSection(Section):
    repetitions: Int = Field(default=1, ge=1, le=1000, description="Independent runs of the whole simulation.")
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
        description=(
            "Dataset name (fashion_mnist, mnist, emnist, cifar10, cifar100, digits, diabetes, synthetic, shakespeare)"
            " or import path 'pkg.mod:Class'."
        ),
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
    metric: Literal["accuracy", "mae", "mse"] = Field(
        default="accuracy",
        description="Metric evaluated on devices and test split: accuracy (classification), mae or mse (regression).",
    )
    test_shard_size: Int = Field(
        default=1000,
        ge=1,
        le=100_000_000,
        description="Test-split examples per test job: workers evaluate each round's model in shards of this size.",
    )
    num_rounds: Int = Field(default=10, ge=1, le=100_000, description="Rounds per repetition.")
    stop_conds: StopConditions = Field(default_factory=StopConditions)
    seed: Int = Field(default=0, ge=0, le=2**32 - 1, description="Seed of every random stream of the run.")
    identical_repetitions: Bool = Field(
        default=False,
        description="Every repetition has repetition 0's devices, data partitions and initial weights, and "
        "its own round-level draws; false draws everything again per repetition.",
    )
    initializer: str = Field(
        default="default",
        min_length=1,
        max_length=NAME_LENGTH,
        description="Initial weights: default, xavier_uniform, kaiming_uniform, zeros, or import path.",
    )


class PhaseParams(Section):
    """The amount of work of a phase: local iterations = epochs * ceil(num_examples / batch_size)."""

    k: Float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Fraction of the devices available in the round to select: floor(k * available), at least 1.",
    )
    epochs: Int = Field(default=1, ge=1, le=10_000, description="Local epochs per job; eval: must be 1 (one pass).")
    batch_size: Int = Field(default=32, ge=1, le=1_000_000, description="Local mini-batch size.")
    num_examples: OptionalInt = Field(
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
    optimizer: Literal["sgd", "adam", "rmsprop", "adagrad"] = Field(default="sgd", description="Local optimizer.")
    learning_rate: OptionalFloat = Field(
        default=None,
        gt=0,
        le=10,
        description="Local learning rate; null: the optimizer's default (sgd 0.01; adam, rmsprop, adagrad 0.001).",
    )
    momentum: Float = Field(default=0.0, ge=0, lt=1, description="SGD momentum.")
    weight_decay: Float = Field(default=0.0, ge=0, lt=1, description="L2 weight decay of the local optimizer.")

    @property
    def local_learning_rate(self) -> float:
        """The learning rate the local optimizer uses: the spec's, or the optimizer's default."""
        if self.learning_rate is not None:
            return self.learning_rate
        return DEFAULT_LEARNING_RATES[self.optimizer]


class DevicesSection(Section):
    num: Int = Field(default=100, ge=1, le=10_000_000, description="Number of simulated devices.")
    p_available: Probability = Field(default=0.8, gt=0, le=1, description="Probability a device is available.")
    p_fail: Probability = Field(default=0.1, ge=0, lt=1, description="Probability an available device fails.")
    energy_failures: Bool = Field(
        default=True,
        description="A job that needs more energy than its device has left fails; false: energy never causes "
        "a failure (the original FELES).",
    )


class ComputationSection(Section):
    ips_mean: Float = Field(default=100, gt=0, description="Mean local iterations per second [iter/s].")
    ips_var: Float = Field(default=50, ge=0, description="Half-width of the uniform ips range [iter/s].")


class EnergySection(Section):
    avail_mean: Float = Field(default=25_000, ge=0, description="Mean energy available per round [mWh].")
    avail_var: Float = Field(default=20_000, ge=0, description="Half-width of the energy range [mWh].")
    pow_comp_s: Float = Field(default=100, ge=0, description="Energy per second of computation [mWh/s].")
    pow_net_s: Float = Field(default=200, ge=0, description="Energy per second of communication [mWh/s].")


class NetworkSection(Section):
    speed_mean: Float = Field(default=100_000, gt=0, description="Mean network speed [parameters/s].")
    speed_var: Float = Field(default=70_000, ge=0, description="Half-width of the speed range [parameters/s].")


class DataSection(Section):
    num_examples_mean: Int = Field(default=600, ge=1, description="Mean local examples per device.")
    num_examples_var: Int = Field(default=0, ge=0, description="Half-width of the local data size range.")
    non_iid_partitions: Float = Field(default=0, ge=0, description="Dirichlet alpha of the label skew; 0 means IID.")
    mislabelling_percentage: Float = Field(
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
    errors: list[tuple[str, str]] = unknown_name_errors(spec)
    stop_metric = spec.simulation.stop_conds.metric
    if spec.simulation.metric == "accuracy" and stop_metric is not None and stop_metric > 1:
        errors.append(("simulation.stop_conds.metric", f"an accuracy is at most 1 (got {stop_metric})"))
    eval_aggregation = spec.algorithms.eval.aggregation
    if eval_aggregation is not None:
        errors.append(
            (
                "algorithms.eval.aggregation",
                "the eval phase aggregates no model (only the fit phase does): remove it or set "
                f"algorithms.fit.aggregation (got {_echo(eval_aggregation)})",
            )
        )
    eval_epochs = spec.algorithms.eval.params.epochs
    if eval_epochs != 1:
        errors.append(
            (
                "algorithms.eval.params.epochs",
                f"evaluation is one pass over the device's data: must be 1 (got {eval_epochs})",
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
            # A speed or a data size must be positive; an energy budget may be 0 (the device can afford nothing).
            rule = f"smaller than {mean_path} ({mean}) so that every draw is positive"
            if not strict:
                rule = f"at most {mean_path} ({mean}) so that every draw is non-negative"
            errors.append((path, f"must be {rule}"))
    # Bounds checked here rather than in the fields: the CRD's schema (generated from the fields) stays as it is.
    local = [
        ("data.num_examples_mean", spec.data.num_examples_mean),
        ("data.num_examples_var", spec.data.num_examples_var),
    ]
    local += [
        (f"algorithms.{phase}.params.num_examples", getattr(spec.algorithms, phase).params.num_examples)
        for phase in ("fit", "eval")
    ]
    errors += [
        (path, f"must be at most {MAX_LOCAL_EXAMPLES} local examples (got {value})")
        for path, value in local
        if value is not None and value > MAX_LOCAL_EXAMPLES
    ]
    needed = memory_estimate(spec)
    if needed > MEMORY_BUDGET_BYTES and not errors:
        examples = spec.devices.num * (spec.data.num_examples_mean + spec.data.num_examples_var) * BYTES_PER_EXAMPLE
        path = "data.num_examples_mean" if examples * 2 >= needed else "devices.num"
        errors.append(
            (
                path,
                f"devices.num ({spec.devices.num}) x up to {spec.data.num_examples_mean + spec.data.num_examples_var} "
                f"local examples need about {needed / 1024**3:.1f} GiB of device data, more than the "
                f"{MEMORY_BUDGET_BYTES / 1024**3:.0f} GiB a simulation may use",
            )
        )
    return errors


def memory_estimate(spec: SimulationSpec) -> int:
    """Bytes the device data of a simulation needs at least: every device's largest possible partition
    (an index and a label per example) and its per-device state."""
    largest = spec.data.num_examples_mean + spec.data.num_examples_var
    return spec.devices.num * (largest * BYTES_PER_EXAMPLE + BYTES_PER_DEVICE)


class SpecError(ValueError):
    """A spec that cannot be loaded; `errors` holds (field path, message) pairs."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        # A message of several lines (a YAML parser's, with its context) keeps its lines, indented under its path.
        lines = "\n".join(f"  {path}: {message}".replace("\n", "\n    ") for path, message in errors)
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
            message = f"{message} (got {_echo(item['input'])})"
        pairs.append((path or "<root>", message))
    return pairs


def _echo(value: Any) -> str:
    """A bad value as an error message shows it: its repr, cut to MAX_ECHO_CHARS (never the whole input)."""
    if isinstance(value, dict | list) and len(value) > 8:
        return f"a {type(value).__name__} of {len(value)} items"
    text = repr(value)
    return text if len(text) <= MAX_ECHO_CHARS else f"{text[: MAX_ECHO_CHARS - 3]}... ({len(text)} characters)"


class DuplicateKeyError(yaml.YAMLError):
    """A mapping that names one key twice; YAML would keep the last one and drop the first one's settings."""

    def __init__(self, path: str, first: yaml.Mark, second: yaml.Mark) -> None:
        self.path = path
        self.first = first
        self.second = second
        super().__init__(f"{path}: duplicate key")

    @property
    def message(self) -> str:
        first, second = self.first.line + 1, self.second.line + 1
        return f"duplicate key on line {second} (first on line {first}): only the last would count; write it once"


def _refuse_duplicate_keys(node: yaml.Node, path: tuple[str, ...] = ()) -> None:
    """Raise DuplicateKeyError for the first key written twice in one mapping, at any depth."""
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicate_keys(item, (*path, str(index)))
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[tuple[str, str], yaml.Mark] = {}
    for key, value in node.value:
        name = str(key.value) if isinstance(key, yaml.ScalarNode) else None
        if name is not None:
            # The resolved tag tells `1` from `"1"`, which are different keys.
            first = seen.setdefault((key.tag, name), key.start_mark)
            if first is not key.start_mark:
                raise DuplicateKeyError(".".join((*path, name)), first, key.start_mark)
        _refuse_duplicate_keys(value, (*path, name or "?"))


class _SpecLoader(yaml.SafeLoader):
    """YAML without aliases: `*name` can multiply a 2 KB file into billions of nodes (an alias bomb); and
    without duplicate keys, which YAML parsers resolve by dropping all but the last one silently."""

    def compose_document(self) -> Any:
        node = super().compose_document()
        _refuse_duplicate_keys(node)
        return node

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"aliases (*{event.anchor}) are not allowed in a spec: write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _yaml_message(error: yaml.YAMLError) -> str:
    """The parser's message intact (its lines and context), after the line and column it points at."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}YAML syntax error\n{str(error).strip()}"


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
    """Read a YAML spec file, following `import:` chains; later definitions win. An error at a key that an
    imported file set names that file."""
    path = Path(path)
    document, origins = _read_with_origins(path, ())
    try:
        return parse_spec(document, str(path))
    except SpecError as error:
        errors = [(_with_file(where, origins.get(where), str(path)), message) for where, message in error.errors]
        raise SpecError(error.source, errors) from None


def _with_file(where: str, origin: str | None, source: str) -> str:
    return f"{where} (from {origin})" if origin is not None and origin != source else where


def read_yaml_with_imports(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """The YAML mapping of `path` deep-merged over the files it imports (relative to itself)."""
    return _read_with_origins(path, chain)[0]


def _read_with_origins(path: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """The merged mapping of read_yaml_with_imports, and the file that set each of its dotted key paths."""
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(str(p) for p in (*chain, resolved))
        raise SpecError(str(path), [("import", f"import cycle: {cycle}")])
    document = read_yaml_mapping(path)
    imports = document.pop("import", None)
    own = dict.fromkeys(_key_paths(document), str(path))
    if imports is None:
        return document, own
    if isinstance(imports, str):
        imports = [imports]
    if not isinstance(imports, list) or not all(isinstance(item, str) for item in imports):
        raise SpecError(str(path), [("import", "must be a file name or a list of file names")])
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for item in imports:
        imported, its_origins = _read_with_origins(path.parent / item, (*chain, resolved))
        merged = deep_merge(merged, imported)
        origins.update(its_origins)
    return deep_merge(merged, document), {**origins, **own}


def _key_paths(document: dict[Any, Any], prefix: str = "") -> Iterator[str]:
    """Every key path of a mapping, dotted as validation errors name fields, sections included."""
    for key, value in document.items():
        dotted = f"{prefix}{key}"
        yield dotted
        if isinstance(value, dict):
            yield from _key_paths(value, f"{dotted}.")


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The YAML mapping of one file as written, `import:` included (bounded in size, without aliases)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as error:
        raise SpecError(str(path), [("<file>", f"cannot read: {error.strerror or error}")]) from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(str(path), [("<file>", f"larger than {MAX_SPEC_BYTES} bytes: not a spec")])
    try:
        stream = io.StringIO(raw.decode("utf-8"))
        stream.name = str(path)  # the parser's messages name the file
        document = yaml.load(stream, Loader=_SpecLoader)
    except UnicodeDecodeError as error:
        raise SpecError(str(path), [("<file>", f"not UTF-8 text: {error.reason} at byte {error.start}")]) from None
    except DuplicateKeyError as error:
        raise SpecError(str(path), [(error.path, error.message)]) from None
    except yaml.YAMLError as error:
        raise SpecError(str(path), [("<yaml>", _yaml_message(error))]) from None
    if document is None:
        raise SpecError(str(path), [("<file>", "the file is empty (or only comments): a spec needs at least one key")])
    if not isinstance(document, dict):
        raise SpecError(str(path), [("<root>", f"must be a mapping, got {type(document).__name__}")])
    return document


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
