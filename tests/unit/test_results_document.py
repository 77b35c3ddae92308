"""results.json and results.csv: what `ResultsDocument.write` puts in them, round after round, and after a
restore from a checkpoint (each round's row is made once; the files must still hold every round)."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from feles.config import parse_spec
from feles.orchestrator.checkpoint import Checkpoint, encode_checkpoint, load_checkpoint, write_checkpoint
from feles.orchestrator.results import ResultsDocument, RoundRecord


def _record(round_: int, **values: float) -> RoundRecord:
    ints = {field.name: round_ for field in fields(RoundRecord) if field.type == "int"}
    floats = {field.name: 0.25 + round_ for field in fields(RoundRecord) if field.type != "int"}
    return RoundRecord(**{**ints, **floats, **values})


def test_each_write_holds_every_round_in_json_and_csv_with_non_finite_values_as_null(tmp_path: Path) -> None:
    spec = parse_spec({"simulation": {"dataset": "digits", "output_folder": str(tmp_path)}})
    document = ResultsDocument(spec, "run")
    for round_ in range(3):
        document.rounds.append(_record(round_, eval_loss=math.nan if round_ == 1 else 0.5))
        document.write()
        written = json.loads(document.json_path.read_text())
        assert written == document.to_dict()
        assert [row["round"] for row in written["rounds"]] == list(range(round_ + 1))
        rows = list(csv.DictReader(document.csv_path.open()))
        assert [int(row["round"]) for row in rows] == list(range(round_ + 1))
    assert written["rounds"][1]["eval_loss"] is None and rows[1]["eval_loss"] == ""
    assert written["rounds"][2]["test_accuracy"] == 2.25 and rows[2]["test_accuracy"] == "2.25"
    assert written["spec"]["simulation"]["dataset"] == "digits" and written["status"] == "running"


def test_a_restored_document_writes_the_checkpoints_rounds_not_the_old_ones(tmp_path: Path) -> None:
    spec = parse_spec({"simulation": {"dataset": "digits", "output_folder": str(tmp_path)}})
    document = ResultsDocument(spec, "run")
    document.rounds += [_record(0), _record(1), _record(2)]
    document.write()
    checkpoint = document.to_dict()
    checkpoint["rounds"] = checkpoint["rounds"][:2]  # the checkpoint was written after round 1
    document.restore(checkpoint)
    document.rounds.append(_record(2, train_loss=9.0))  # round 2 run again, to another end
    document.status = "succeeded"
    document.write()
    written = json.loads(document.json_path.read_text())
    assert [row["train_loss"] for row in written["rounds"]] == [0.25, 1.25, 9.0]
    assert written["status"] == "succeeded"
    assert [row["train_loss"] for row in csv.DictReader(document.csv_path.open())] == ["0.25", "1.25", "9.0"]


def test_a_checkpoint_reads_back_the_document_whether_given_its_json_text_or_not(tmp_path: Path) -> None:
    spec = parse_spec({"simulation": {"dataset": "digits", "output_folder": str(tmp_path)}})
    document = ResultsDocument(spec, "run")
    document.rounds += [_record(0), _record(1, eval_loss=math.nan), _record(2)]
    checkpoint = Checkpoint(
        run_id="0" * 32,
        spec=spec.model_dump(mode="json"),
        repetition=0,
        next_round=3,
        finished=False,
        model_version=3,
        simulated_time=1.5,
        energy=2.5,
        results=document.to_dict(),
        weights={"w": torch.ones(2)},
        server_state={},
        history={"rounds": np.arange(3)},
    )
    # The loop hands over results.json's text, rendered from cached rows, instead of encoding the rows again.
    for results_json in (None, document.to_json()):
        write_checkpoint(tmp_path, encode_checkpoint(checkpoint, results_json))
        loaded = load_checkpoint(tmp_path)
        assert loaded is not None and loaded.results == document.to_dict()
        assert loaded.results["rounds"][1]["eval_loss"] is None
        assert (loaded.next_round, loaded.energy, loaded.model_version) == (3, 2.5, 3)
