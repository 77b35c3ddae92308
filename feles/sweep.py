"""Sweeps: a base simulation spec and axes of values expand into a grid of cells, one simulation each.

Pure code, shared by `feles sweep` (each cell a local run) and the operator (each cell a FelesSimulation):
`SweepSpec` is the schema of sweep files and of a FelesSweep's `.spec`; `expand` turns it into named cells and
checks every cell's whole spec before anything runs, so that a bad value is reported with the cell and the field
instead of failing one simulation an hour into the sweep.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, Field, ValidationError, WithJsonSchema, model_validator

from feles.config import (
    NAME_LENGTH,
    Int,
    Section,
    SimulationSpec,
    SpecError,
    deep_merge,
    not_a_boolean,
    parse_spec,
    read_yaml_with_imports,
    validation_errors,
)

#: The spec field a `seeds` list varies; the comparison averages over it.
SEED_PATH = "simulation.seed"
#: Fields a sweep never varies: every cell writes into a folder of its own.
FIXED_PATHS = ("simulation.output_folder", "simulation.output_file")
#: Longest cell name: a DNS label, so that it can name Kubernetes objects and folders alike.
MAX_CELL_NAME = 63
#: The hash that replaces the end of a too long name (8 hex digits, after a '-').
HASH_LENGTH = 8
MAX_CELLS = 1000
MAX_AXES = 16
MAX_VALUES = 1000
LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*$"

#: Any JSON value; in the CRD a node the API server keeps as it is (the operator validates it per cell).
JsonValue = Annotated[Any, WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True})]


class Parameter(Section):
    """One spec field and the values it takes, in order."""

    path: str = Field(
        min_length=1,
        max_length=NAME_LENGTH,
        pattern=PATH_PATTERN,
        description="Dotted path of a spec field, e.g. algorithms.fit.selection or data.non_iid_partitions.",
    )
    values: list[JsonValue] = Field(min_length=1, max_length=MAX_VALUES, description="The values, in order.")


class Axis(Section):
    """One dimension of the grid: a field and its values, or several fields zipped (varying together)."""

    path: str | None = Field(
        default=None,
        min_length=1,
        max_length=NAME_LENGTH,
        pattern=PATH_PATTERN,
        description="Dotted path of a spec field, e.g. algorithms.fit.selection (with values; or zip).",
    )
    values: list[JsonValue] | None = Field(
        default=None, min_length=1, max_length=MAX_VALUES, description="The values of that field, in order."
    )
    zip: list[Parameter] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_AXES,
        description="Fields that vary together: the i-th cell along this axis takes the i-th value of each.",
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=24,
        pattern=LABEL_PATTERN,
        description="Short name in cell names, e.g. alpha; default: the field's name (its last path part).",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Axis:
        if self.zip is None and (self.path is None or self.values is None):
            raise ValueError("give path and values, or zip")
        if self.zip is not None and (self.path is not None or self.values is not None):
            raise ValueError("give path and values, or zip, not both")
        if self.zip is not None and len({len(item.values) for item in self.zip}) > 1:
            lengths = ", ".join(f"{item.path}: {len(item.values)}" for item in self.zip)
            raise ValueError(f"zipped fields need as many values each ({lengths})")
        return self

    @property
    def parameters(self) -> list[Parameter]:
        if self.zip is not None:
            return list(self.zip)
        return [Parameter(path=self.path or "", values=list(self.values or ()))]

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        """The axis's points: one value per parameter each."""
        return list(zip(*(item.values for item in self.parameters), strict=True))


#: What ranks a sweep's cells: `metric`, each cell's own simulation.metric; one metric by name; the test loss.
BestMetric = Literal["metric", "accuracy", "mae", "mse", "loss"]
#: The metrics a run measures (simulation.metric), which `best.metric` may also name.
RUN_METRICS = ("accuracy", "mae", "mse")


class Best(Section):
    """How to rank finished cells (the operator's status and `feles sweep`'s tables show the best one)."""

    metric: BestMetric = Field(
        default="metric",
        description=(
            "What ranks the finished cells by their final test value: metric (the cells' own simulation.metric), "
            "accuracy, mae or mse (which must be the cells' simulation.metric), or loss."
        ),
    )
    mode: Literal["max", "min"] | None = Field(
        default=None,
        description="Whether higher or lower is better; default: max for accuracy, min for mae, mse and loss.",
    )

    def objective(self, run_metric: str) -> Objective:
        """The ranking for cells measuring `run_metric` (their simulation.metric)."""
        metric = run_metric if self.metric == "metric" else self.metric
        return Objective(metric, (self.mode or ("max" if metric == "accuracy" else "min")) == "max")


@dataclass(frozen=True)
class Objective:
    """What ranks a sweep's finished cells: a final test figure (accuracy, mae, mse or loss) and its direction."""

    metric: str
    higher_is_better: bool

    @property
    def mode(self) -> str:
        return "max" if self.higher_is_better else "min"

    def rank(self, value: float) -> float:
        """A sort key: the better the value, the smaller its key."""
        return -value if self.higher_is_better else value


class SweepSpec(Section):
    """A base simulation spec, the axes that vary it (a grid: every combination) and how many run at once."""

    base: SimulationSpec = Field(
        default_factory=SimulationSpec, description="The simulation spec every cell starts from (a `feles run` file)."
    )
    axes: list[Axis] = Field(
        default_factory=list, max_length=MAX_AXES, description="The grid's dimensions; cells: every combination."
    )
    # The bounds before the check of booleans: Annotated[Int, Field(...)] loses them from the JSON schema (the CRD).
    seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1), BeforeValidator(not_a_boolean)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_VALUES,
        description="Seeds: the last axis, over simulation.seed; comparisons average over it.",
    )
    parallelism: Int = Field(default=2, ge=1, le=1000, description="Simulations running at once, at most.")
    best: Best = Field(default_factory=Best, description="How to rank finished cells.")


class SweepError(SpecError):
    """A sweep that cannot run; `errors` holds (where, message) pairs naming the cell and the field."""


@dataclass(frozen=True)
class GridAxis:
    """An axis as the grid sees it: its label in cell names, its fields and its points."""

    label: str
    paths: tuple[str, ...]
    labels: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    named: bool  # the user named it: one label before all its values


@dataclass(frozen=True)
class Cell:
    """One simulation of the grid: its name, the values the axes give it (path -> value) and its whole spec."""

    name: str
    values: dict[str, Any]
    spec: SimulationSpec


Check = Callable[[SimulationSpec], list[tuple[str, str]]]


def parse_sweep(document: Any, source: str = "sweep") -> SweepSpec:
    """Validate a mapping into a SweepSpec or raise SweepError listing every problem."""
    if not isinstance(document, dict):
        raise SweepError(source, [("<root>", f"must be a mapping, got {type(document).__name__}")])
    try:
        return SweepSpec.model_validate(document)
    except ValidationError as error:
        raise SweepError(source, _spec_hint(document) + validation_errors(error)) from None


def _spec_hint(document: dict[Any, Any]) -> list[tuple[str, str]]:
    """A line saying so when the document looks like a simulation spec rather than a sweep file."""
    if "base" in document or "axes" in document or not set(document) & set(SimulationSpec.model_fields):
        return []
    hint = "this is a simulation spec, not a sweep: a sweep file holds base: (a spec, or a spec file's name) and "
    return [("<root>", hint + "axes: (the values to vary); run one spec with feles run")]


def load_sweep(path: str | Path) -> SweepSpec:
    """Read a sweep file; `base` may be a spec mapping (with `import:`) or the name of a spec file beside it."""
    path = Path(path)
    document = read_yaml_with_imports(path, ())
    base = document.get("base")
    if isinstance(base, str):
        document["base"] = read_yaml_with_imports(path.parent / base, ())
    elif isinstance(base, dict) and "import" in base:
        imports = base.pop("import")
        merged: dict[str, Any] = {}
        for item in [imports] if isinstance(imports, str) else imports:
            merged = deep_merge(merged, read_yaml_with_imports(path.parent / str(item), ()))
        document["base"] = deep_merge(merged, base)
    return parse_sweep(document, str(path))


def grid_axes(sweep: SweepSpec) -> list[GridAxis]:
    """The axes in grid order, the seeds last."""
    axes = []
    for axis in sweep.axes:
        paths = tuple(item.path for item in axis.parameters)
        labels = (axis.name,) if axis.name and len(paths) == 1 else tuple(_label(path) for path in paths)
        label = axis.name or "-".join(labels)
        axes.append(GridAxis(label, paths, labels, axis.rows, named=axis.name is not None))
    if sweep.seeds is not None:
        axes.append(GridAxis("seed", (SEED_PATH,), ("seed",), [(seed,) for seed in sweep.seeds], named=True))
    return axes


def axis_problems(sweep: SweepSpec) -> list[tuple[str, str]]:
    """What is wrong with the axes themselves: unknown or repeated fields, fields a sweep may not vary, size."""
    problems: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for index, axis in enumerate(sweep.axes):
        for position, item in enumerate(axis.parameters):
            where = f"axes[{index}].zip[{position}].path" if axis.zip is not None else f"axes[{index}].path"
            problem = path_problem(item.path)
            if problem is None and item.path in seen:
                problem = f"{item.path} already varies in {seen[item.path]}"
            if problem is not None:
                problems.append((where, problem))
            seen.setdefault(item.path, where)
    if sweep.seeds is not None and SEED_PATH in seen:
        problems.append(("seeds", f"{SEED_PATH} already varies in {seen[SEED_PATH]}: give seeds once"))
    problems.extend(repeated_values(sweep))
    labels = [axis.label for axis in grid_axes(sweep)]
    for label in sorted({label for label in labels if labels.count(label) > 1}):
        problems.append(("axes", f"two axes are named {label!r} in cell names: give one of them a name"))
    size = 1
    for axis in grid_axes(sweep):
        size *= len(axis.rows)
    if size > MAX_CELLS:
        problems.append(("axes", f"the grid has {size} cells, at most {MAX_CELLS}"))
    return problems


#: Why a repeated axis value or seed is refused.
ONCE = "give each value once: a repeat adds no cell, it only counts the same cells again"


def repeated_values(sweep: SweepSpec) -> list[tuple[str, str]]:
    """Values an axis (or `seeds`) gives more than once: the same cells would run under one name and count again
    in the comparison's mean and std. Values equal as YAML values repeat (1 and 1.0 too, mappings in any order)."""
    problems = []
    for index, (axis, grid) in enumerate(zip(sweep.axes, grid_axes(sweep), strict=False)):
        for row, positions in _repeats(grid.rows):
            pairs = [f"{path}={_shown(value)}" for path, value in zip(grid.paths, row, strict=True)]
            if axis.zip is None:
                what, where = _shown(row[0]), f"axes[{index}].values"
            else:
                what, where = f"({', '.join(pairs)})", f"axes[{index}].zip"
            places = ", ".join(f"values[{position}]" for position in positions)
            message = f"{what} is given {len(positions)} times in axis {grid.label} ({places}): {ONCE}"
            problems.append((where, message))
    for (seed,), positions in _repeats([(seed,) for seed in sweep.seeds or ()]):
        places = ", ".join(f"seeds[{position}]" for position in positions)
        problems.append(("seeds", f"{seed} is given {len(positions)} times ({places}): {ONCE}"))
    return problems


def _repeats(rows: list[tuple[Any, ...]]) -> list[tuple[tuple[Any, ...], list[int]]]:
    """Each row given more than once, with its positions, in the order of first appearance."""
    positions: dict[str, tuple[tuple[Any, ...], list[int]]] = {}
    for position, row in enumerate(rows):
        positions.setdefault(_canonical(_comparable(row)), (row, []))[1].append(position)
    return [(row, found) for row, found in positions.values() if len(found) > 1]


def _comparable(value: Any) -> Any:
    """`value` with its whole floats as ints, so that values equal as numbers compare equal (1.0 and 1)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(key): _comparable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_comparable(item) for item in value]
    return value


def _shown(value: Any) -> str:
    """A value as a message shows it: JSON, which reads as YAML ("random", 0.1, {"epochs": 1})."""
    return json.dumps(value, default=str)


def path_problem(path: str) -> str | None:
    """Why a dotted path names no field a sweep may vary, or None (keys inside a free-form map are the plug-in's)."""
    if path in FIXED_PATHS:
        return f"{path} cannot vary: every cell writes into a folder of its own"
    model: type[BaseModel] = SimulationSpec
    parts = path.split(".")
    for index, part in enumerate(parts):
        where = ".".join(parts[:index]) or "the spec"
        field = model.model_fields.get(part)
        if field is None:
            return f"{where} has no field {part!r} (fields: {', '.join(model.model_fields)})"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        if index == len(parts) - 1 or typing.get_origin(annotation) is dict:
            return None
        return f"{'.'.join(parts[: index + 1])} is a value, it has no field {parts[index + 1]!r}"
    return None


def expand(
    sweep: SweepSpec, *, max_length: int = MAX_CELL_NAME, check: Check | None = None, source: str = "sweep"
) -> list[Cell]:
    """Every cell of the grid, in order (the last axis varies fastest), each with its checked spec.

    Raises SweepError listing every problem: of the axes, then of each cell's spec (schema rules, and those of
    `check`, e.g. `feles.plugin_checks.plugin_errors`), each named `cell <name>: <field>`; then whether `best`
    can rank the cells (`objective_problems`).
    """
    problems = axis_problems(sweep)
    if problems:
        raise SweepError(source, problems)
    axes = grid_axes(sweep)
    combinations = list(itertools.product(*(axis.rows for axis in axes)))
    points = [_values(axes, combination) for combination in combinations]
    names = cell_names(
        [_part(axis, row) for axis, row in zip(axes, combination, strict=True)] for combination in combinations
    )
    base = sweep.base.model_dump(mode="json")
    cells, errors = [], []
    for name, values in zip(_unique(names, points, max_length), points, strict=True):
        document = base
        for path, value in values.items():
            document = set_path(document, path, value)
        try:
            spec = parse_spec(document, name)
        except SpecError as error:
            errors.extend((f"cell {name}: {field}", message) for field, message in error.errors)
            continue
        errors.extend((f"cell {name}: {field}", message) for field, message in (check(spec) if check else []))
        cells.append(Cell(name, values, spec))
    if not errors:
        errors = objective_problems(sweep.best, cells)
    if errors:
        raise SweepError(source, errors)
    return cells


def objective_problems(best: Best, cells: list[Cell]) -> list[tuple[str, str]]:
    """Why `best` cannot rank these cells: it names a metric they do not measure, or they measure several."""
    metrics = list(dict.fromkeys(cell.spec.simulation.metric for cell in cells))
    if best.metric in RUN_METRICS:
        others = [cell for cell in cells if cell.spec.simulation.metric != best.metric]
        if others:
            first = others[0]
            more = f" (and {len(others) - 1} more)" if len(others) > 1 else ""
            own = "metric (the cells' own), " if len(metrics) == 1 else ""
            message = (
                f"{best.metric} does not apply: cell {first.name}{more} measures {first.spec.simulation.metric} "
                f"(simulation.metric); rank by {own}{' or '.join(metrics)}, or loss"
            )
            return [("best.metric", message)]
    if best.metric == "metric" and len(metrics) > 1:
        message = (
            f"the cells measure different metrics ({', '.join(metrics)}: simulation.metric varies), which do not "
            "rank against each other: name the one to rank by, or loss"
        )
        return [("best.metric", message)]
    return []


def sweep_objective(sweep: SweepSpec, cells: list[Cell]) -> Objective:
    """How the sweep ranks its cells (checked by `expand`): `best` resolved against the cells' metric."""
    run_metric = cells[0].spec.simulation.metric if cells else sweep.base.simulation.metric
    return sweep.best.objective(run_metric)


def set_path(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `document` with the field at the dotted `path` set (a mapping merges into a section)."""
    head, _, rest = path.partition(".")
    current = document.get(head)
    if rest:
        return {**document, head: set_path(current if isinstance(current, dict) else {}, rest, value)}
    if isinstance(value, dict) and isinstance(current, dict):
        return {**document, head: deep_merge(current, value)}
    return {**document, head: value}


# --- Names ---


def cell_names(parts: Iterable[list[str]]) -> list[str]:
    """Each cell's full name: its axes' parts joined, e.g. sel-random-alpha-0p1-seed-1 ('base' with no axis)."""
    return ["-".join(part for part in cell if part) or "base" for cell in parts]


def shorten(name: str, max_length: int, key: str) -> str:
    """`name` if it fits, else its start and a hash of `key` (the cell's values): deterministic and still unique."""
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(key.encode()).hexdigest()[:HASH_LENGTH]
    keep = max_length - HASH_LENGTH - 1
    return f"{name[:keep].rstrip('-')}-{digest}" if keep > 0 else digest[:max_length]


def value_text(value: Any) -> str:
    """A value as it appears in a cell name: lower-case letters, digits and '-' (0.1 -> 0p1, -2 -> m2)."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    if isinstance(value, int | float):
        text = format(value, "g") if isinstance(value, float) else str(value)
        return text.replace(".", "p").replace("-", "m").replace("+", "")
    if isinstance(value, str):
        text = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")
        if text:
            return text
    return "h" + hashlib.sha256(_canonical(value).encode()).hexdigest()[:6]


def _label(path: str) -> str:
    """The default label of a field in cell names: its last path part (non_iid_partitions -> non-iid-partitions)."""
    text = re.sub(r"[^a-z0-9]+", "-", path.rpartition(".")[2].lower()).strip("-")
    return text if text[:1].isalpha() else f"p-{text}".rstrip("-")


def _part(axis: GridAxis, row: tuple[Any, ...]) -> str:
    texts = [value_text(value) for value in row]
    if axis.named:
        return "-".join([axis.label, *texts])
    return "-".join(f"{label}-{text}" for label, text in zip(axis.labels, texts, strict=True))


def _unique(names: list[str], points: list[dict[str, Any]], max_length: int) -> list[str]:
    """Names that fit `max_length` and differ: cells whose names clash (a_b and a-b) get their values' hash."""
    keys = [_canonical(values) for values in points]
    short = [shorten(name, max_length, key) for name, key in zip(names, keys, strict=True)]
    clashes = {name for name in short if short.count(name) > 1}
    return [
        shorten(f"{name}-{_digest(key)}", max_length, key) if name in clashes else name
        for name, key in zip(short, keys, strict=True)
    ]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:HASH_LENGTH]


def _values(axes: list[GridAxis], combination: tuple[tuple[Any, ...], ...]) -> dict[str, Any]:
    """path -> value of one combination of the axes' rows."""
    pairs = [pair for axis, row in zip(axes, combination, strict=True) for pair in zip(axis.paths, row, strict=True)]
    return dict(pairs)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def labels_of(sweep: SweepSpec) -> dict[str, str]:
    """Each varied path's label, as tables show it (a zipped field keeps its own)."""
    return {path: label for axis in grid_axes(sweep) for path, label in zip(axis.paths, axis.labels, strict=True)}


def sweep_yaml(sweep: SweepSpec) -> str:
    """The sweep as YAML, every field explicit."""
    return yaml.safe_dump(sweep.model_dump(mode="json", exclude_none=True), sort_keys=False)


# --- A sweep's folder: one folder per cell, and sweep.json saying which values each cell has ---

#: The file in a sweep's folder that lists its cells (written before any cell runs).
MANIFEST = "sweep.json"
MANIFEST_FORMAT = 1
#: What each cell's folder holds: the spec it runs (feles run's config) and its results.
CELL_SPEC = "simulation.yaml"
RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class SweepCell:
    """One cell of a sweep's folder: its name, its axis values (path -> value) and its run folder."""

    name: str
    values: dict[str, Any]
    path: Path

    @property
    def results(self) -> Path:
        return self.path / RESULTS_FILE


@dataclass(frozen=True)
class SweepFolder:
    """A sweep's folder as sweep.json describes it: each varied path's label (in grid order) and the cells."""

    path: Path
    labels: dict[str, str]
    cells: list[SweepCell]
    objective: Objective | None = None  # None: a sweep.json older than `best` (rank by the cells' metric)


def manifest(sweep: SweepSpec, cells: list[Cell]) -> dict[str, Any]:
    """sweep.json's content: the labels of the varied paths, each cell's values in grid order, and how the
    cells rank (`best`: the resolved metric and mode)."""
    objective = sweep_objective(sweep, cells)
    return {
        "format": MANIFEST_FORMAT,
        "labels": labels_of(sweep),
        "cells": [{"name": cell.name, "values": cell.values} for cell in cells],
        "best": {"metric": objective.metric, "mode": objective.mode},
    }


def is_sweep_folder(folder: Path) -> bool:
    return (folder / MANIFEST).is_file()


def read_sweep_folder(folder: str | Path) -> SweepFolder:
    """The cells of a sweep's folder (`feles sweep` wrote it), each with its run folder; ValueError if none."""
    folder = Path(folder)
    try:
        document = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        labels = {str(path): str(label) for path, label in document["labels"].items()}
        cells = [
            SweepCell(str(item["name"]), dict(item["values"]), folder / item["name"]) for item in document["cells"]
        ]
        best = document.get("best")
        objective = Objective(str(best["metric"]), best["mode"] == "max") if best else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{folder}: not a sweep folder ({MANIFEST} unreadable: {error})") from None
    return SweepFolder(folder, labels, cells, objective)


def sweep_runs(folder: str | Path) -> list[SweepCell]:
    """A sweep folder's cells with their axis values and run folders (results in `cell.results`), in grid order."""
    return read_sweep_folder(folder).cells
