"""The results document: one record per repetition and round, written as JSON and CSV after each round.

The metric's fields carry its name: `test_accuracy`, `eval_accuracy` and `final_test_accuracy` in a
classification run, `test_mae` (or `test_mse`) ... in a regression run, so that no column labels an error an
accuracy; the document's `metric` says which.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from feles import __version__
from feles.config import SimulationSpec
from feles.protocol import json_safe

#: Fields that depend on the machine and the moment, not on the simulation.
WALL_CLOCK_FIELDS = frozenset({"wall_time"})


@dataclass(frozen=True)
class RoundRecord:
    """What happened in one round; times are simulated seconds, energy is mWh."""

    repetition: int
    round: int
    model_version: int
    devices_available: int
    fit_selected: int
    fit_failed: int
    eval_selected: int
    eval_failed: int
    train_loss: float | None
    eval_loss: float | None
    eval_metric: float | None
    test_loss: float
    test_metric: float
    round_time: float
    simulated_time: float
    energy: float
    wall_time: float


#: The fields named after the run's metric, with "metric" standing for its name.
METRIC_FIELDS = {"eval_metric": "eval_{}", "test_metric": "test_{}", "final_test_metric": "final_test_{}"}


def metric_field(field: str, metric: str) -> str:
    """The name `field` has in a results document of a `metric` run (eval_metric -> eval_mae, ...)."""
    return METRIC_FIELDS[field].format(metric) if field in METRIC_FIELDS else field


def csv_columns(metric: str) -> list[str]:
    """The CSV's columns in a `metric` run."""
    return [metric_field(field.name, metric) for field in fields(RoundRecord)]


#: The CSV's columns in a classification run (accuracy).
CSV_COLUMNS = csv_columns("accuracy")


def _named(row: dict[str, Any], metric: str) -> dict[str, Any]:
    return {metric_field(key, metric): value for key, value in row.items()}


def _unnamed(row: dict[str, Any], metric: str) -> dict[str, Any]:
    names = {metric_field(field, metric): field for field in METRIC_FIELDS}
    return {names.get(key, key): value for key, value in row.items()}


@dataclass(frozen=True)
class RepetitionSummary:
    repetition: int
    rounds: int
    stop_reason: str
    final_test_metric: float
    final_test_loss: float
    simulated_time: float
    energy: float


@dataclass(frozen=True)
class _WrittenRound:
    """A round as the files hold it, made once: rewriting every row every round made long runs quadratic."""

    record: RoundRecord
    row: dict[str, Any]
    json_text: str
    csv_line: str


class ResultsDocument:
    """Everything a run produced so far; `write` saves it atomically as JSON and CSV.

    `rounds` only grows between restores: each round's row, JSON and CSV text are made when it is first
    written, and later writes reuse them.
    """

    def __init__(self, spec: SimulationSpec, run_id: str) -> None:
        self.spec = spec
        self.run_id = run_id
        self.rounds: list[RoundRecord] = []
        self.repetitions: list[RepetitionSummary] = []
        self.status = "running"
        self.message = ""
        self._written: list[_WrittenRound] = []
        # The loop thread writes the document while the API thread serves it: both extend the cache.
        self._lock = threading.Lock()
        self._spec_dump = json_safe(spec.model_dump(mode="json"))

    def restore(self, document: dict[str, Any]) -> None:
        """Take the rounds and summaries of a document written by `to_dict` (a checkpoint's)."""
        metric = document.get("metric", "accuracy")  # older documents measured accuracy only
        self.rounds = [RoundRecord(**_unnamed(row, metric)) for row in document["rounds"]]
        self.repetitions = [RepetitionSummary(**_unnamed(summary, metric)) for summary in document["repetitions"]]
        with self._lock:
            self._written = []

    @property
    def metric(self) -> str:
        return self.spec.simulation.metric

    @property
    def json_path(self) -> Path:
        return Path(self.spec.simulation.output_folder) / self.spec.simulation.output_file

    @property
    def csv_path(self) -> Path:
        return self.json_path.with_suffix(".csv")

    def round_rows(self, records: list[RoundRecord]) -> list[dict[str, Any]]:
        """Round records as the document writes them: the metric's fields named after it."""
        return [_named(asdict(record), self.metric) for record in records]

    def repetition_rows(self) -> list[dict[str, Any]]:
        """The repetitions' summaries as the document writes them."""
        return [_named(asdict(summary), self.metric) for summary in self.repetitions]

    def _written_rounds(self) -> list[_WrittenRound]:
        """Every round as written, in order (a copy: the loop appends meanwhile)."""
        rounds = list(self.rounds)
        with self._lock:
            written = self._written
            shared = min(len(written), len(rounds))  # the API thread's copy may be older than the cache
            if shared and written[shared - 1].record is not rounds[shared - 1]:
                written.clear()  # the rounds were replaced, not appended to
            columns = csv_columns(self.metric)
            for record in rounds[len(written) :]:
                row = json_safe(_named(asdict(record), self.metric))
                line = io.StringIO()
                csv.DictWriter(line, fieldnames=columns, lineterminator="\n").writerow(row)
                written.append(_WrittenRound(record, row, json.dumps(row), line.getvalue()))
            return written[: len(rounds)]

    def _head(self) -> dict[str, Any]:
        return {
            "feles_version": __version__,
            "run_id": self.run_id,
            "status": self.status,
            "message": self.message,
            "metric": self.metric,
            "spec": self._spec_dump,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **json_safe(self._head()),
            "repetitions": json_safe(self.repetition_rows()),
            "rounds": [written.row for written in self._written_rounds()],
        }

    def to_json(self) -> str:
        """The document as results.json holds it: indented, one line per repetition summary and round."""
        head = json.dumps(json_safe(self._head()), indent=2)[: -len("\n}")]
        repetitions = [json.dumps(row) for row in json_safe(self.repetition_rows())]
        rounds = [written.json_text for written in self._written_rounds()]
        return f'{head},\n  "repetitions": {_json_lines(repetitions)},\n  "rounds": {_json_lines(rounds)}\n}}\n'

    def to_csv(self) -> str:
        header = ",".join(csv_columns(self.metric)) + "\n"
        return header + "".join(written.csv_line for written in self._written_rounds())

    def texts(self) -> tuple[str, str]:
        """What results.json and results.csv hold now: a snapshot that another thread may write later."""
        return self.to_json(), self.to_csv()

    def write(self, texts: tuple[str, str] | None = None) -> None:
        """Write the document (or a snapshot of it from `texts`) to both files, each atomically."""
        json_text, csv_text = texts or self.texts()
        atomic_write(self.json_path, json_text)
        atomic_write(self.csv_path, csv_text)


def _json_lines(items: list[str]) -> str:
    """A JSON list of already encoded items, one per line at the document's indentation."""
    return "[\n    " + ",\n    ".join(items) + "\n  ]" if items else "[]"


def atomic_write(path: Path, text: str) -> None:
    """Write then rename, so a reader (or a crash) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
