"""Finding and loading FELES results documents (results.json) from files and folders."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    paths: Sequence[Path], labels: Sequence[str] = (), warn: Callable[[str], None] = lambda message: None
) -> list[Run]:
    """Every results document under `paths` (a folder: its JSON files, recursively), labelled.

    A file named explicitly must be a results document; JSON files found in a folder that are not are
    skipped with a warning. `labels`, when given, name the runs in the order they are found.
    """
    found: list[tuple[Path, dict[str, Any]]] = []
    for path in paths:
        if path.is_file():
            found.append((path, read_document(path)))
        elif path.is_dir():
            found.extend(_documents_under(path, warn))
        else:
            raise LoadError(f"{path}: no such file or folder")
    found = _unique(found)
    if not found:
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


def _documents_under(folder: Path, warn: Callable[[str], None]) -> list[tuple[Path, dict[str, Any]]]:
    documents = []
    for path in sorted(folder.rglob("*.json")):
        if not path.is_file() or path.name.startswith("."):
            continue  # the orchestrator's half-written temporary files start with a dot
        try:
            documents.append((path, read_document(path)))
        except LoadError as error:
            warn(f"skipped {error}")
    if not documents:
        raise LoadError(f"{folder}: no FELES results file under it (looked for *.json recursively)")
    return documents


def default_labels(found: Sequence[tuple[Path, dict[str, Any]]]) -> list[str]:
    """`name (algorithm)`, name being the file stem, or its folder for results.json; more of the path if ambiguous."""
    algorithms = [str(document["spec"].get("algorithms", {}).get("federated_algorithm", "?")) for _, document in found]
    paths = [path for path, _ in found]
    depths = [1] * len(paths)
    while True:
        labels = [
            _with_algorithm(_name(path, depth), algorithm)
            for path, depth, algorithm in zip(paths, depths, algorithms, strict=True)
        ]
        clashing = [i for i, label in enumerate(labels) if labels.count(label) > 1 and depths[i] < len(paths[i].parts)]
        if not clashing:
            return labels
        for i in clashing:
            depths[i] += 1


def _with_algorithm(name: str, algorithm: str) -> str:
    """`name (algorithm)`, or just the name when it already says the algorithm (e.g. a folder per algorithm)."""
    return name if algorithm.lower() in name.lower() else f"{name} ({algorithm})"


def _name(path: Path, depth: int) -> str:
    """The last `depth` parts of the path without the suffix, dropping the default file name."""
    parts = [*(part for part in path.parent.parts if part != path.anchor), path.stem]
    if path.stem == DEFAULT_STEM and len(parts) > 1:
        parts = parts[:-1]
    return "/".join(parts[-depth:])
