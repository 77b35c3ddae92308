"""Configs written for the original FELES (NicholasRasi/FL-Simulator), translated into FELES spec documents.

A document is in the original's layout when it holds a key only the original has (`simulation.model_name`,
`tf_verbosity`, `num_processes`, `devices.adversary_num`); FELES refuses all four, so no FELES spec is ever
taken for one. The translation honours, maps or ignores every key of the original, one by one: each mapping is
listed, and each key ignored or whose meaning changes gets ONE warning line naming it. A key that neither the
original nor FELES knows is an error naming it; a FELES key in an original config is kept as written.
"""

from __future__ import annotations

import contextlib
import secrets
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from feles.config import SimulationSpec, SpecError, deep_merge, load_spec, parse_spec, read_yaml_mapping

#: Keys only the original has: any one of them marks a document as written for it.
ORIGINAL_MARKERS: tuple[tuple[str, ...], ...] = (
    ("simulation", "model_name"),
    ("simulation", "tf_verbosity"),
    ("simulation", "num_processes"),
    ("devices", "adversary_num"),
)

#: Seeds drawn for `seed: none` lie in numpy's seed range, as the original's np.random.seed needed.
SEED_RANGE = 2**32

DROPOUT_NOTE = "its Keras model drops 20% of the hidden units in training (Dropout(0.2)); mlp_small has no dropout"


@dataclass(frozen=True)
class OriginalModel:
    """What one `model_name` of the original becomes: a FELES dataset and model, and what differs, if anything."""

    dataset: str
    model: str
    difference: str = ""
    dataset_params: dict[str, Any] = field(default_factory=dict)


MODEL_NAMES: dict[str, OriginalModel] = {
    "mnist": OriginalModel("mnist", "mlp_small", DROPOUT_NOTE),
    "fashion_mnist": OriginalModel("fashion_mnist", "mlp_small"),
    "emnist": OriginalModel("emnist", "cnn_batchnorm"),
    "cifar10": OriginalModel("cifar10", "cnn_keras_tutorial"),
    "cifar100": OriginalModel("cifar100", "cnn_keras_tutorial"),
    "shakespeare": OriginalModel(
        "shakespeare",
        "char_lstm_onehot",
        "the original predicted the next character at every position of 100-character windows of "
        "tiny_shakespeare; FELES's shakespeare predicts the character after each window (of 100, as the "
        "original's), each device drawing its windows from the pooled plays (partition iid, as the original's "
        "were)",
        {"seq_len": 100, "partition": "iid"},
    ),
    "boston_housing": OriginalModel(
        "diabetes",
        "regression_mlp",
        "Boston housing is not available offline (scikit-learn dropped it); FELES runs scikit-learn's bundled "
        "diabetes regression data (442 patients, 10 features) in its place, with regression_mlp",
    ),
}

#: model_names the original had that FELES cannot run, and why.
UNAVAILABLE_MODEL_NAMES: dict[str, str] = {
    "imdb_reviews": "the IMDB reviews data set is not available offline and its text model is not implemented",
    "sentiment140": "the Sentiment140 tweets are not available offline and their text model is not implemented",
    "wisdm": "the WISDM activity data set is not available offline and its model is not implemented",
    "oxford_pets": "the Oxford-IIIT pets data set is not available offline and its segmentation model is not "
    "implemented",
    "tff_emnist": "TensorFlow Federated's EMNIST is not available offline (model_name: emnist is)",
    "tff_cifar100": "TensorFlow Federated's CIFAR-100 is not available offline (model_name: cifar100 is)",
    "tff_shakespeare": "TensorFlow Federated's Shakespeare is not available offline (model_name: shakespeare is)",
}

#: Keras optimizer names (case-insensitive, as tf.keras.optimizers.get reads them) -> FELES's optimizer.
KERAS_OPTIMIZERS = {"sgd": "sgd", "adam": "adam", "rmsprop": "rmsprop", "adagrad": "adagrad"}
KERAS_OPTIMIZERS_WITHOUT_FELES = frozenset({"adadelta", "adamax", "nadam", "ftrl", "adamw", "lion", "adafactor"})

#: Keras metric names -> FELES's simulation.metric.
KERAS_METRICS = {
    "accuracy": "accuracy",
    "acc": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
    "categorical_accuracy": "accuracy",
    "mae": "mae",
    "mean_absolute_error": "mae",
    "mse": "mse",
    "mean_squared_error": "mse",
}

#: Federated algorithms of the original that never read fit.aggregation: each aggregates its own way.
OWN_AGGREGATION = {"feddyn": "FedDyn", "fednova": "FedNova"}

#: The original's selectors take no parameters from the config: these are their built-in limits.
BUILT_IN_SELECTION_PARAMS: dict[str, dict[str, float]] = {
    "limited_consumption": {"energy_limit": 3400},
    "limited_time": {"total_time_limit": 5},
}

IGNORED: dict[str, str] = {
    "simulation.tf_verbosity": "TensorFlow's log verbosity of the original's workers (0 silent, 1 progress bar, "
    "2 a line per epoch); FELES trains with PyTorch and logs through --log-level",
    "simulation.num_processes": "the original's number of worker processes (its code never reads it); "
    "`feles run --workers N` sets FELES's",
    "devices.adversary_num": "the original's number of malicious devices, which its code never reads (no device "
    "behaves adversarially); FELES has no adversaries either",
}

#: Keys of the original that FELES has at the same path with the same meaning.
SAME_PATHS = frozenset(
    {
        "simulation.repetitions",
        "simulation.num_rounds",
        "devices.num",
        "devices.p_available",
        "devices.p_fail",
        "computation.ips_mean",
        "computation.ips_var",
        "energy.avail_mean",
        "energy.avail_var",
        "energy.pow_comp_s",
        "energy.pow_net_s",
        "network.speed_mean",
        "network.speed_var",
        "data.num_examples_mean",
        "data.num_examples_var",
        "data.non_iid_partitions",
        *(f"algorithms.{phase}.{key}" for phase in ("fit", "eval") for key in ("update", "data")),
        *(f"algorithms.{phase}.params.{key}" for phase in ("fit", "eval") for key in ("batch_size", "num_examples")),
        "algorithms.fit.params.k",
        "algorithms.fit.params.epochs",
    }
)


def draw_fresh_seed() -> int:
    """A seed no one chose: what the original's `seed: none` meant (numpy seeded from the OS)."""
    return secrets.randbelow(SEED_RANGE)


@dataclass
class Translation:
    """A FELES spec document made from an original config, with how each key was translated."""

    document: dict[str, Any] = field(default_factory=dict)
    mapping: list[str] = field(default_factory=list)  # one line per original key: where it went
    warnings: list[str] = field(default_factory=list)  # one line per key ignored or whose meaning changes
    origins: dict[str, str] = field(default_factory=dict)  # FELES path -> the original key it came from
    drawn_seed: int | None = None  # the seed drawn for `seed: none`

    def reuse_seed(self, seed: int, where: str) -> None:
        """`seed: none` stands for the seed of the run being resumed (drawn when it started), not a new one."""
        if self.drawn_seed is None:
            return
        self.document["simulation"]["seed"] = seed
        self.drawn_seed = seed
        self.warnings = [
            f"simulation.seed: none -> seed {seed} of the run being resumed (from {where})"
            if line.startswith("simulation.seed: ")
            else line
            for line in self.warnings
        ]
        self.mapping = [
            f"simulation.seed: none -> {seed}, the resumed run's" if line.startswith("simulation.seed: ") else line
            for line in self.mapping
        ]

    def to_yaml(self, source: str) -> str:
        """The FELES spec as YAML, the mapping and warnings in comments above it."""
        lines = [f"# FELES spec translated from {source}, a config written for the original FELES.", "# mapping:"]
        lines += [f"#   {line}" for line in self.mapping]
        if self.warnings:
            lines += ["# warnings:", *(f"#   {line}" for line in self.warnings)]
        return "\n".join(lines) + "\n" + yaml.safe_dump(self.document, sort_keys=False)


@dataclass(frozen=True)
class LoadedSpec:
    """A spec file's spec; `translation` is set when the file was written for the original FELES."""

    spec: SimulationSpec
    translation: Translation | None = None


def has_original_keys(document: Any) -> bool:
    """Whether a document holds a key only the original FELES has."""
    if not isinstance(document, dict):
        return False
    for section, key in ORIGINAL_MARKERS:
        part = document.get(section)
        if isinstance(part, dict) and key in part:
            return True
    return False


def _import_target(path: Path, target: str) -> Path:
    """The file an unmarked config's import names: relative to itself (FELES's rule) if that exists, else to the
    working directory (the original's)."""
    beside = path.parent / target
    return beside if beside.is_file() else Path(target)


def is_original_config(path: Path, chain: tuple[Path, ...] = ()) -> bool:
    """Whether the file, or a file its import chain reaches, holds a key only the original FELES has."""
    document = read_yaml_mapping(path)
    if has_original_keys(document):
        return True
    target = document.get("import")
    if not isinstance(target, str):
        return False
    candidate = _import_target(path, target)
    resolved = path.resolve()
    if not candidate.is_file() or candidate.resolve() in (*chain, resolved):
        return False
    try:
        return is_original_config(candidate, (*chain, resolved))
    except SpecError:
        return False  # an unreadable import is reported by whichever loader follows it


def read_original_config(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The original's import rule: `import:` names ONE file, relative to the working directory; the importing
    file's keys win."""
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(str(p) for p in (*chain, resolved))
        raise SpecError(str(path), [("import", f"import cycle: {cycle}")])
    document = read_yaml_mapping(path)
    target = document.pop("import", None)
    if target is None:
        return document
    if not isinstance(target, str):
        message = "the original FELES imports one file, named by a string relative to the working directory"
        raise SpecError(str(path), [("import", message)])
    imported = Path(target)
    if not imported.is_file():
        message = f"{target!r} is not a file: the original FELES reads imports relative to the working directory"
        raise SpecError(str(path), [("import", f"{message} ({Path.cwd()})")])
    return deep_merge(read_original_config(imported, (*chain, resolved)), document)


def load_any_spec(path: Path, draw_seed: Callable[[], int] = draw_fresh_seed) -> LoadedSpec:
    """A FELES spec, or a config written for the original FELES translated into one."""
    path = Path(path)
    if not is_original_config(path):
        return LoadedSpec(load_spec(path))
    translation = translate(read_original_config(path), str(path), draw_seed)
    try:
        spec = parse_spec(translation.document, str(path))
    except SpecError as error:
        # Name the original's key where the FELES field came from another one (model_name -> dataset).
        errors = [(_with_origin(where, translation.origins), message) for where, message in error.errors]
        raise SpecError(error.source, errors) from None
    return LoadedSpec(spec, translation)


def write_translated_spec(config: Path, loaded: LoadedSpec, resume: bool) -> Path:
    """Write a translated config's FELES spec as `<output_folder>/<config stem>.feles.yaml`, for a run to read;
    a resumed run keeps the seed that file's translation drew for `seed: none`. Raises OSError."""
    if loaded.translation is None:
        raise ValueError(f"{config} is a FELES spec: it needs no translation")
    translation = loaded.translation
    translated = Path(loaded.spec.simulation.output_folder) / f"{config.stem}.feles.yaml"
    if resume and translation.drawn_seed is not None and translated.is_file():
        # A file this version cannot read leaves the new seed: the checkpoint check then reports the mismatch.
        with contextlib.suppress(SpecError):
            translation.reuse_seed(load_spec(translated).simulation.seed, str(translated))
    translated.parent.mkdir(parents=True, exist_ok=True)
    translated.write_text(translation.to_yaml(str(config)), encoding="utf-8")
    return translated


def _with_origin(where: str, origins: dict[str, str]) -> str:
    origin = origins.get(where)
    return f"{where} (from the original's {origin})" if origin else where


def feles_knows(path: tuple[str, ...]) -> bool:
    """Whether a key path names a field of FELES's spec (any key inside a free-form map counts)."""
    model: type[BaseModel] = SimulationSpec
    for index, part in enumerate(path):
        info = model.model_fields.get(part)
        if info is None:
            return False
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        return index == len(path) - 1 or typing.get_origin(annotation) is dict
    return True


def _leaves(document: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(key path, value) of every value that is not a section of the spec (a free-form map is a value)."""
    for key, value in document.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and _is_section(path):
            yield from _leaves(value, path)
        else:
            yield path, value


def _is_section(path: tuple[str, ...]) -> bool:
    """Whether a key path names a section of FELES's spec (every section of the original's is one)."""
    model: type[BaseModel] = SimulationSpec
    for part in path:
        info = model.model_fields.get(part)
        annotation = info.annotation if info is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    return True


def _get(document: dict[str, Any], dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _has(document: dict[str, Any], dotted: str) -> bool:
    *parents, last = dotted.split(".")
    section = _get(document, ".".join(parents)) if parents else document
    return isinstance(section, dict) and last in section


class _Translator:
    """Translates one merged original config; collects the document, the mapping, the warnings and the errors."""

    def __init__(self, source: dict[str, Any], draw_seed: Callable[[], int]) -> None:
        self.source = source
        self.draw_seed = draw_seed
        self.result = Translation()
        self.errors: list[tuple[str, str]] = []
        self.kept: list[tuple[str, Any]] = []  # FELES keys written in the original config, applied last

    def set(self, dotted: str, value: Any) -> None:
        *parents, last = dotted.split(".")
        section = self.result.document
        for part in parents:
            section = section.setdefault(part, {})
        section[last] = value

    def map(self, original: str, dotted: str, value: Any, note: str = "") -> None:
        self.set(dotted, value)
        if dotted != original:
            self.result.origins[dotted] = original
        target = "" if dotted == original else f" -> {dotted}"
        self.result.mapping.append(f"{original}{target}: {value!r}" + (f" ({note})" if note else ""))

    def note(self, original: str, text: str) -> None:
        self.result.mapping.append(f"{original}: {text}")

    def warn(self, original: str, text: str) -> None:
        self.result.warnings.append(f"{original}: {text}")

    def run(self) -> Translation:
        for path, value in _leaves(self.source):
            self.key(".".join(path), path, value)
        self.fill_in()
        for dotted, value in self.kept:
            self.set(dotted, value)
        return self.result

    def key(self, dotted: str, path: tuple[str, ...], value: Any) -> None:
        handler = self.handlers().get(dotted)
        if handler is not None:
            handler(dotted, value)
        elif dotted in SAME_PATHS:
            self.map(dotted, dotted, value)
        elif dotted in IGNORED:
            self.warn(dotted, f"ignored: {IGNORED[dotted]}")
            self.note(dotted, "ignored (see the warning)")
        elif feles_knows(path):
            self.kept.append((dotted, value))
            self.note(dotted, f"{value!r}, a FELES key, kept as written")
        else:
            self.errors.append((dotted, "unknown key: neither the original FELES nor FELES has it"))

    def handlers(self) -> dict[str, Callable[[str, Any], None]]:
        return {
            "simulation.model_name": self.model_name,
            "simulation.metric": self.metric,
            "simulation.seed": self.seed,
            "simulation.initializer": self.initializer,
            "simulation.output_folder": self.output_folder,
            "simulation.output_file": self.output_file,
            "simulation.stop_conds.metric": self.stop_metric,
            "simulation.stop_conds.loss": self.stop_loss,
            "algorithms.federated_algorithm": self.federated_algorithm,
            "algorithms.optimizer": self.optimizer,
            "algorithms.fit.aggregation": self.fit_aggregation,
            "algorithms.eval.aggregation": self.eval_aggregation,
            "algorithms.fit.selection": self.selection,
            "algorithms.eval.selection": self.selection,
            "algorithms.eval.params.k": self.eval_k,
            "algorithms.eval.params.epochs": self.eval_epochs,
            "data.mislabelling_percentage": self.mislabelling,
        }

    def model_name(self, dotted: str, value: Any) -> None:
        for feles_key in ("simulation.dataset", "simulation.model"):
            if _has(self.source, feles_key):
                self.errors.append((dotted, f"{feles_key} is given too: keep model_name (the original's) or it"))
                return
        if isinstance(value, str) and value in UNAVAILABLE_MODEL_NAMES:
            self.errors.append((dotted, f"{value!r} cannot run in FELES: {UNAVAILABLE_MODEL_NAMES[value]}"))
            return
        if not isinstance(value, str) or value not in MODEL_NAMES:
            known = ", ".join(sorted(MODEL_NAMES))
            self.errors.append((dotted, f"unknown model_name {value!r}; FELES runs the original's {known}"))
            return
        chosen = MODEL_NAMES[value]
        self.set("simulation.dataset", chosen.dataset)
        self.set("simulation.model", chosen.model)
        self.result.origins.update({"simulation.dataset": dotted, "simulation.model": dotted})
        self.note(dotted, f"{value!r} -> simulation.dataset: {chosen.dataset!r}, simulation.model: {chosen.model!r}")
        if chosen.dataset_params and not _has(self.source, "simulation.dataset_params"):
            self.set("simulation.dataset_params", dict(chosen.dataset_params))
            self.result.origins["simulation.dataset_params"] = dotted
            self.note("simulation.dataset_params", f"{chosen.dataset_params!r}, as the original's {value} data")
        if chosen.difference:
            self.warn(dotted, f"{value!r}: {chosen.difference}")

    def metric(self, dotted: str, value: Any) -> None:
        name = KERAS_METRICS.get(value) if isinstance(value, str) else None
        if name is None:
            known = ", ".join(sorted(KERAS_METRICS))
            self.errors.append((dotted, f"Keras metric {value!r} has no FELES counterpart; FELES reads {known}"))
            return
        self.map(dotted, dotted, name, "" if name == value else f"Keras's {value!r}")

    def seed(self, dotted: str, value: Any) -> None:
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            drawn = self.draw_seed()
            self.set(dotted, drawn)
            self.result.drawn_seed = drawn
            self.warn(dotted, f"none -> drew seed {drawn} (recorded in the results' spec; reuse it to repeat the run)")
            self.note(dotted, f"none -> {drawn}, drawn fresh")
            return
        self.map(dotted, dotted, value)

    def initializer(self, dotted: str, value: Any) -> None:
        if value != "default":
            self.errors.append((dotted, f"the original FELES knows only 'default' (got {value!r})"))
            return
        self.map(dotted, dotted, "xavier_uniform", "Keras's default: Glorot-uniform weights, zero biases")

    def output_folder(self, dotted: str, value: Any) -> None:
        self.map(dotted, dotted, value, "relative to the working directory; the original wrote to ../../ of it")

    def output_file(self, dotted: str, value: Any) -> None:
        self.map(dotted, dotted, value, "FELES's results document, with a CSV of the rounds beside it")

    def stop_metric(self, dotted: str, value: Any) -> None:
        self.map(dotted, dotted, value, "on the federated eval metric: stop_conds.target eval")
        metric = KERAS_METRICS.get(str(_get(self.source, "simulation.metric")))
        if metric in ("mae", "mse") and value is not None:
            self.warn(
                dotted,
                f"the original stopped once the eval {metric} was AT LEAST {value} (it compared every metric as "
                f"an accuracy); FELES stops once it is at most {value}",
            )

    def stop_loss(self, dotted: str, value: Any) -> None:
        self.map(dotted, dotted, value, "on the federated eval loss: stop_conds.target eval")

    def federated_algorithm(self, dotted: str, value: Any) -> None:
        self.map(dotted, dotted, value)
        if value == "fedprox" and not _has(self.source, "algorithms.algorithm_params.mu"):
            self.set("algorithms.algorithm_params.mu", 1.0)
            self.note("algorithms.algorithm_params.mu", "1.0, the original's fixed FedProx mu")
            self.warn(
                dotted,
                "fedprox: the original's proximal term (mu 1) carried no gradient, so its FedProx trained as "
                "FedAvg; FELES applies the term, with mu 1",
            )

    def optimizer(self, dotted: str, value: Any) -> None:
        name = KERAS_OPTIMIZERS.get(value.lower()) if isinstance(value, str) else None
        if name is None:
            known = ", ".join(sorted(KERAS_OPTIMIZERS))
            if isinstance(value, str) and value.lower() in KERAS_OPTIMIZERS_WITHOUT_FELES:
                reason = f"Keras optimizer {value!r} is not implemented in FELES"
            else:
                reason = f"unknown optimizer {value!r}"
            self.errors.append((dotted, f"{reason}; FELES has {known} (any case, as Keras reads them)"))
            return
        self.map(dotted, dotted, name, "learning_rate null: the optimizer's Keras default, as the original used")

    def fit_aggregation(self, dotted: str, value: Any) -> None:
        algorithm = _get(self.source, "algorithms.federated_algorithm")
        if algorithm in OWN_AGGREGATION:
            if value != algorithm:
                self.warn(
                    dotted,
                    f"{value!r} ignored: the original's {OWN_AGGREGATION[algorithm]} never reads it and aggregates "
                    f"its own way; FELES does the same ({algorithm}'s own aggregation)",
                )
            self.note(dotted, f"{value!r} -> null: {algorithm}'s own aggregation")
            return
        self.map(dotted, dotted, value)

    def eval_aggregation(self, dotted: str, value: Any) -> None:
        self.warn(dotted, f"{value!r} ignored: the original never reads it (only the fit phase aggregates models)")
        self.note(dotted, "ignored (see the warning)")

    def selection(self, dotted: str, value: Any) -> None:
        phase_params = dotted.replace(".selection", ".selection_params")
        self.map(dotted, dotted, value)
        built_in = BUILT_IN_SELECTION_PARAMS.get(value) if isinstance(value, str) else None
        if built_in and not _has(self.source, phase_params):
            self.set(phase_params, dict(built_in))
            self.note(phase_params, f"{built_in!r}, the original selector's built-in limits")

    def eval_k(self, dotted: str, value: Any) -> None:
        self.map(dotted, dotted, value)
        fit_k = _get(self.source, "algorithms.fit.params.k")
        if fit_k is not None and value != fit_k:
            self.warn(
                dotted,
                f"{value} used for the eval phase; the original read fit's k ({fit_k}) for eval too (a bug: its "
                "docs give eval its own k)",
            )

    def eval_epochs(self, dotted: str, value: Any) -> None:
        if value != 1:
            self.warn(dotted, f"{value!r} dropped: the original ignored it (evaluation is one pass over the data)")
        self.note(dotted, "dropped: evaluation is one pass")

    def mislabelling(self, dotted: str, value: Any) -> None:
        self.map(dotted, dotted, value)
        if value:
            self.warn(
                dotted,
                f"{value}: the original's code never applied it (its mislabelling sits inside a docstring); FELES "
                "mislabels this fraction of each device's labels",
            )

    def repetitions_implied(self) -> tuple[str, Any, str]:
        """Identical repetitions, as the original re-seeded each one from its seed; with `seed: none` it did
        not, and only the data partition and initial weights (drawn once) were shared."""
        dotted = "simulation.identical_repetitions"
        if self.result.drawn_seed is None:
            return dotted, True, "the original re-seeded every repetition alike: same devices, data, initial weights"
        repetitions = _get(self.source, "simulation.repetitions")
        if isinstance(repetitions, int) and repetitions > 1:
            self.warn(
                "simulation.repetitions",
                f"{repetitions} repetitions with seed none: the original redrew the devices each repetition but "
                "kept one data partition and one set of initial weights; FELES redraws all three "
                "(identical_repetitions false)",
            )
        return dotted, False, "seed none: the original re-seeded nothing, so each repetition drew its devices anew"

    def fill_in(self) -> None:
        """What the original did without a key for it, and defaults that a key of the original implies."""
        if not _has(self.source, "algorithms.federated_algorithm"):
            self.note(
                "algorithms.federated_algorithm", "not given -> 'fedavg', FELES's default (the original has none)"
            )
        if not _has(self.source, "algorithms.eval.params.k") and _has(self.source, "algorithms.fit.params.k"):
            fit_k = _get(self.source, "algorithms.fit.params.k")
            self.set("algorithms.eval.params.k", fit_k)
            self.note("algorithms.eval.params.k", f"not given -> {fit_k!r}, fit's k, which the original used")
        if not _has(self.source, "simulation.initializer"):
            self.set("simulation.initializer", "xavier_uniform")
            self.note("simulation.initializer", "not given -> 'xavier_uniform', Keras's default")
        implied = [
            ("simulation.stop_conds.target", "eval", "the original stopped on the federated eval metric and loss"),
            self.repetitions_implied(),
            ("devices.energy_failures", False, "the original never failed a job for lack of energy"),
        ]
        for dotted, value, why in implied:
            if not _has(self.source, dotted):
                self.set(dotted, value)
                self.note(dotted, f"{value!r}: {why}")


def translate(
    document: dict[str, Any], source: str = "spec", draw_seed: Callable[[], int] = draw_fresh_seed
) -> Translation:
    """The FELES spec document of a (merged) original config, with its mapping and warnings; SpecError lists
    every key that cannot be translated."""
    if not isinstance(document, dict):
        raise SpecError(source, [("<root>", f"must be a mapping, got {type(document).__name__}")])
    translator = _Translator(document, draw_seed)
    translation = translator.run()
    if translator.errors:
        raise SpecError(source, translator.errors)
    return translation
