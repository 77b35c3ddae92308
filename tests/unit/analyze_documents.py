"""Hand-built FELES results documents for the analyzer's tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def round_record(repetition: int, round_: int, accuracy: float, **fields: Any) -> dict[str, Any]:
    """A round record with plausible values; `fields` override any of them."""
    record = {
        "repetition": repetition,
        "round": round_,
        "model_version": round_ + 1,
        "devices_available": 8,
        "fit_selected": 4,
        "fit_failed": 0,
        "eval_selected": 2,
        "eval_failed": 0,
        "train_loss": 1.0,
        "eval_loss": 1.0,
        "eval_accuracy": accuracy,
        "test_loss": 2.0 - accuracy,
        "test_accuracy": accuracy,
        "round_time": 10.0,
        "simulated_time": 10.0 * (round_ + 1),
        "energy": 100.0,
        "wall_time": 0.1,
    }
    record.update(fields)
    return record


def results_document(
    repetitions: Sequence[Sequence[dict[str, Any]]],
    metric: float | None = None,
    algorithm: str = "fedavg",
    status: str = "succeeded",
) -> dict[str, Any]:
    """A results document whose rounds are `repetitions` flattened (each a list of round records)."""
    return {
        "feles_version": "0.1.0",
        "run_id": "0" * 32,
        "status": status,
        "message": "",
        "spec": {
            "simulation": {"dataset": "digits", "stop_conds": {"metric": metric, "loss": None}},
            "algorithms": {"federated_algorithm": algorithm},
        },
        "repetitions": [],
        "rounds": [record for rounds in repetitions for record in rounds],
    }


def accuracy_run(*accuracies_per_repetition: Sequence[float], **fields: Any) -> list[list[dict[str, Any]]]:
    """Repetitions whose rounds have these test accuracies (and `fields` in every record)."""
    return [
        [round_record(rep, round_, accuracy, **fields) for round_, accuracy in enumerate(accuracies)]
        for rep, accuracies in enumerate(accuracies_per_repetition)
    ]


def write_document(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path
