"""Which checkpoint an orchestrator resumes from: the same spec, even one written by an older version."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from feles.config import SimulationSpec, parse_spec
from feles.orchestrator.checkpoint import Checkpoint, CheckpointError, save_checkpoint
from feles.orchestrator.server import OutputFolderError, resumable_checkpoint


def spec_in(folder: Path, **simulation: object) -> SimulationSpec:
    return parse_spec({"simulation": {"dataset": "digits", "output_folder": str(folder), **simulation}})


def write_checkpoint(spec_document: dict) -> None:
    save_checkpoint(
        spec_document["simulation"]["output_folder"],
        Checkpoint(
            run_id="0" * 32,
            spec=spec_document,
            repetition=0,
            next_round=3,
            finished=False,
            model_version=3,
            simulated_time=12.5,
            energy=100.0,
            results={},
            weights={"w": torch.zeros(2)},
            server_state={},
            history={},
        ),
    )


def test_a_checkpoint_of_an_older_version_without_a_new_key_resumes(tmp_path: Path) -> None:
    spec = spec_in(tmp_path)
    older = spec.model_dump(mode="json")
    del older["simulation"]["test_shard_size"]  # added after this checkpoint's version
    write_checkpoint(older)
    checkpoint = resumable_checkpoint(spec, fresh=False)
    assert checkpoint is not None and checkpoint.next_round == 3


def test_a_checkpoint_of_another_spec_is_refused(tmp_path: Path) -> None:
    write_checkpoint(spec_in(tmp_path, num_rounds=5).model_dump(mode="json"))
    advice = r"belongs to a different simulation spec; use another output folder, or start over, discarding it "
    advice += r"\(feles run without --resume, feles orchestrator --fresh\)"
    with pytest.raises(CheckpointError, match=advice):
        resumable_checkpoint(spec_in(tmp_path, num_rounds=6), fresh=False)


def test_a_checkpoint_whose_spec_this_version_cannot_read_names_the_key(tmp_path: Path) -> None:
    document = spec_in(tmp_path).model_dump(mode="json")
    document["simulation"]["retired_key"] = 1
    write_checkpoint(document)
    with pytest.raises(CheckpointError, match=r"simulation\.retired_key: Extra inputs are not permitted"):
        resumable_checkpoint(spec_in(tmp_path), fresh=False)


def test_fresh_discards_the_checkpoint(tmp_path: Path) -> None:
    write_checkpoint(spec_in(tmp_path, num_rounds=5).model_dump(mode="json"))
    assert resumable_checkpoint(spec_in(tmp_path), fresh=True) is None
    assert not any(tmp_path.iterdir())


def test_a_fresh_run_of_another_results_file_keeps_the_folders_run(tmp_path: Path) -> None:
    # Two runs sharing a folder, each with its own results file (as the original FELES's configs do): the second
    # discarded the first's checkpoint and device records without a word.
    write_checkpoint(spec_in(tmp_path).model_dump(mode="json"))
    other = spec_in(tmp_path)
    other.simulation.output_file = "best_round_time.json"
    refusal = r"holds the checkpoint and device records of the run whose results are results\.json; starting the "
    refusal += r"run of best_round_time\.json there would discard them"
    with pytest.raises(OutputFolderError, match=refusal):
        resumable_checkpoint(other, fresh=True)
    assert (tmp_path / "checkpoint.safetensors").is_file()
    assert resumable_checkpoint(spec_in(tmp_path), fresh=True) is None  # its own run starts over
    assert not (tmp_path / "checkpoint.safetensors").exists()
