"""The results document: one record per repetition and round, written as JSON and CSV after each round."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
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
    eval_accuracy: float | None
    test_loss: float
    test_accuracy: float
    round_time: float
    simulated_time: float
    energy: float
    wall_time: float


CSV_COLUMNS = [field.name for field in fields(RoundRecord)]


@dataclass(frozen=True)
class RepetitionSummary:
    repetition: int
    rounds: int
    stop_reason: str
    final_test_accuracy: float
    final_test_loss: float
    simulated_time: float
    energy: float


class ResultsDocument:
    """Everything a run produced so far; `write` saves it atomically as JSON and CSV."""

    def __init__(self, spec: SimulationSpec, run_id: str) -> None:
        self.spec = spec
        self.run_id = run_id
        self.rounds: list[RoundRecord] = []
        self.repetitions: list[RepetitionSummary] = []
        self.status = "running"
        self.message = ""

    def restore(self, document: dict[str, Any]) -> None:
        """Take the rounds and summaries of a document written by `to_dict` (a checkpoint's)."""
        self.rounds = [RoundRecord(**row) for row in document["rounds"]]
        self.repetitions = [RepetitionSummary(**summary) for summary in document["repetitions"]]

    @property
    def json_path(self) -> Path:
        return Path(self.spec.simulation.output_folder) / self.spec.simulation.output_file

    @property
    def csv_path(self) -> Path:
        return self.json_path.with_suffix(".csv")

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "feles_version": __version__,
                "run_id": self.run_id,
                "status": self.status,
                "message": self.message,
                "spec": self.spec.model_dump(mode="json"),
                "repetitions": [asdict(summary) for summary in self.repetitions],
                "rounds": [asdict(record) for record in self.rounds],
            }
        )

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in self.rounds:
            writer.writerow(json_safe(asdict(record)))
        return buffer.getvalue()

    def write(self) -> None:
        atomic_write(self.json_path, json.dumps(self.to_dict(), indent=2) + "\n")
        atomic_write(self.csv_path, self.to_csv())


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
