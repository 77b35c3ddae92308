"""Finding and loading FELES results documents (results.json) from files and folders."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feles.sweep import MANIFEST

#: Keys every results document has (feles.orchestrator.results.ResultsDocument.to_dict).
REQUIRED_KEYS = frozenset({"feles_version", "spec", "rounds"})
#: The file name the orchestrator writes by default; such files are named after their folder instead.
DEFAULT_STEM = "results"


class LoadError(ValueError):
    """A path that gives no results to analyse; the message names the path and the problem."""


@dataclass(frozen=True)
class Run:
    """One results file: its path, the label it gets in tables and legends, and the parsed document."""

    path: Path
    label: str
    document: dict[str, Any]

    @property
    def spec(self) -> dict[str, Any]:
        return self.document.get("spec") or {}

    @property
    def rounds(self) -> list[dict[str, Any]]:
        return self.document["rounds"]

    @property
    def algorithm(self) -> str:
        return str((self.spec.get("algorithms") or {}).get("federated_algorithm", "?"))

    @property
    def metric(self) -> str:
        """The run's metric: accuracy, mae or mse (documents older than regression runs measured accuracy)."""
        simulation = self.spec.get("simulation") or {}
        return str(self.document.get("metric") or simulation.get("metric") or "accuracy")

    @property
    def test_metric_key(self) -> str:
        """The rounds' field of the test metric: test_accuracy, test_mae or test_mse."""
        return f"test_{self.metric}"

    @property
    def target_metric(self) -> float | None:
        """The spec's stop_conds.metric (the test metric to reach), if set."""
        conditions = (self.spec.get("simulation") or {}).get("stop_conds") or {}
        value = conditions.get("metric")
        return None if value is None else float(value)


def is_results_document(document: Any) -> bool:
    """Whether a parsed JSON value looks like a FELES results document."""
    return (
        isinstance(document, dict)
        and document.keys() >= REQUIRED_KEYS
        and isinstance(document["rounds"], list)
        and isinstance(document["spec"], dict)
    )


def read_document(path: Path) -> dict[str, Any]:
    """The results document in `path`; LoadError if it is unreadable, not JSON or not a FELES document."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise LoadError(f"{path}: cannot read it ({error})") from None
    except json.JSONDecodeError as error:
        raise LoadError(f"{path}: not JSON ({error})") from None
    if not is_results_document(document):
        keys = ", ".join(sorted(REQUIRED_KEYS))
        raise LoadError(f"{path}: not a FELES results document (expected the keys {keys})")
    return document


def load_runs(
    paths: Sequence[Path],
    labels: Sequence[str] = (),
    warn: Callable[[str], None] = lambda message: None,
    sweeps: Sequence[Path] = (),
) -> list[Run]:
    """Every results document under `paths` (a folder: its JSON files, recursively), labelled.

    A file named explicitly must be a results document; JSON files found in a folder that are not are
    skipped with a warning. `labels`, when given, name the runs in the order they are found. Files inside
    `sweeps` (the folders of `feles sweep` under `paths`, whose cells feles.analyze groups) are left out, and a
    folder holding only sweeps gives no run rather than an error.
    """
    found: list[tuple[Path, dict[str, Any]]] = []
    for path in paths:
        if path.is_file():
            found.append((path, read_document(path)))
        elif path.is_dir():
            found.extend(_documents_under(path, warn, sweeps))
        else:
            raise LoadError(f"{path}: no such file or folder")
    found = _unique(found)
    if not found and not sweeps:
        raise LoadError(f"no FELES results file found in {', '.join(str(path) for path in paths)}")
    if labels and len(labels) != len(found):
        names = "".join(f"\n  {path}" for path, _ in found)
        raise LoadError(f"{len(labels)} --label given for {len(found)} results files:{names}")
    chosen = list(labels) or default_labels([(path, document) for path, document in found])
    return [Run(path, label, document) for (path, document), label in zip(found, chosen, strict=True)]


def _unique(found: list[tuple[Path, dict[str, Any]]]) -> list[tuple[Path, dict[str, Any]]]:
    """Each file once, when a folder and a file inside it (or two nested folders) are both given."""
    seen: set[Path] = set()
    unique = []
    for path, document in found:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append((path, document))
    return unique


def _documents_under(
    folder: Path, warn: Callable[[str], None], sweeps: Sequence[Path] = ()
) -> list[tuple[Path, dict[str, Any]]]:
    inside = [sweep.absolute() for sweep in sweeps]
    documents = []
    for path in sorted(folder.rglob("*.json")):
        if not path.is_file() or path.name.startswith(".") or path.name == MANIFEST:
            continue  # the orchestrator's half-written temporary files start with a dot; sweep.json is no run
        if any(path.absolute().is_relative_to(sweep) for sweep in inside):
            continue
        try:
            documents.append((path, read_document(path)))
        except LoadError as error:
            warn(f"skipped {error}")
    if not documents and not any(sweep.is_relative_to(folder.absolute()) for sweep in inside):
        raise LoadError(f"{folder}: no FELES results file under it (looked for *.json recursively)")
    return documents


def default_labels(found: Sequence[tuple[Path, dict[str, Any]]]) -> list[str]:
    """`name (algorithm)`, name being the file stem, or its folder for results.json; when any two would be the
    same, every run's name is its path relative to the runs' common folder instead (one rule for all)."""
    algorithms = [str(document["spec"].get("algorithms", {}).get("federated_algorithm", "?")) for _, document in found]
    return distinct_names([path for path, _ in found], lambda index, name: _with_algorithm(name, algorithms[index]))


def distinct_names(paths: Sequence[Path], decorate: Callable[[int, str], str] = lambda index, name: name) -> list[str]:
    """A name per path (decorated): its last part (a results.json by its folder, a file by its stem); if any two
    are the same, the path relative to their common folder for every path; then the whole relative path."""
    places = [path.absolute() for path in paths]
    if len(places) > 1:
        common = Path(os.path.commonpath([_place(path).parent for path in places]))
    else:
        common = places[0].parent if places else Path()
    namings: list[Callable[[Path], str]] = [
        lambda path: _place(path).name,
        lambda path: _place(path).relative_to(common).as_posix(),
        lambda path: path.relative_to(common).as_posix(),
    ]
    names: list[str] = []
    for naming in namings:
        names = [decorate(index, naming(path)) for index, path in enumerate(places)]
        if len(set(names)) == len(names):
            break
    return names


def _place(path: Path) -> Path:
    """What names a results file: its folder for the default file name, else the file without its suffix."""
    if path.suffix == ".json":
        return path.parent if path.stem == DEFAULT_STEM else path.with_suffix("")
    return path


def _with_algorithm(name: str, algorithm: str) -> str:
    """`name (algorithm)`, or just the name when it already says the algorithm (e.g. a folder per algorithm)."""
    return name if algorithm.lower() in name.lower() else f"{name} ({algorithm})"
