"""What a round hands to the workers: its fit jobs, then its eval jobs and test shards together (both evaluate
the new model, so the round waits for one phase end instead of two), and what the loop makes of the answers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from feles.config import parse_spec
from feles.orchestrator.job_block import JobBlock
from feles.orchestrator.loop import RunParts, SimulationLoop
from feles.orchestrator.model_store import ModelStore
from feles.orchestrator.results import ResultsDocument
from feles.orchestrator.runner import JobRunner, Outcomes
from feles.orchestrator.state import Progress
from feles.protocol import Job, JobResult, Phase, SimulationPhase

#: What the played workers answer: a test shard's accuracy is its index / 10, an eval job's 0.9.
EVAL_ACCURACY = 0.9


class AnsweringRunner(JobRunner):
    """Workers played in process: each submission is recorded and answered at once (fit jobs return the model)."""

    lease_seconds = 10.0

    def __init__(self, models: ModelStore) -> None:
        self.models = models
        self.submissions: list[list[Job]] = []
        self._done: dict[str, tuple[JobResult, Mapping[str, torch.Tensor]]] = {}

    def submit(self, blocks: Sequence[JobBlock], payloads: Mapping[str, bytes]) -> None:
        jobs = [job for block in blocks for job in block]
        self.submissions.append(jobs)
        for job in jobs:
            self._done[job.id] = (self._answer(job), dict(self.models.current()) if job.phase is Phase.FIT else {})

    def _answer(self, job: Job) -> JobResult:
        metric = int(job.id.rsplit(".", 1)[1]) / 10 if job.phase is Phase.TEST else EVAL_ACCURACY
        return JobResult(job_id=job.id, worker_id="w", loss=1.0, metric=metric, num_examples=job.num_examples,
                         num_steps=1 if job.phase is Phase.FIT else 0, train_seconds=0.0)  # fmt: skip

    def wait(self, blocks: Sequence[JobBlock]) -> None:
        pass

    def take(self, blocks: Sequence[JobBlock]) -> Outcomes:
        return Outcomes({job_id: self._done.pop(job_id) for block in blocks for job_id in block.ids})

    def stop(self) -> None:
        pass


def test_the_eval_jobs_and_test_shards_of_a_round_go_out_together_shards_first(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "simulation": {"dataset": "digits", "model": "logreg", "num_rounds": 2, "output_folder": str(tmp_path),
                           "test_shard_size": 100},
            "devices": {"num": 10, "p_fail": 0.0, "p_available": 1.0},
            "data": {"num_examples_mean": 20},
            "algorithms": {"fit": {"params": {"k": 0.5}}, "eval": {"params": {"k": 0.3}}},
        }
    )  # fmt: skip
    models = ModelStore()
    runner = AnsweringRunner(models)
    parts = RunParts(spec, "0" * 32, "logreg", runner, models, Progress(), ResultsDocument(spec, "0" * 32))
    loop = SimulationLoop(parts)
    loop.run()
    assert loop.progress.phase is SimulationPhase.SUCCEEDED, loop.progress.message

    phases = [[job.phase for job in jobs] for jobs in runner.submissions]
    # Per round: the 5 fit jobs, then the test split's shards (359 digits in shards of 100) before 3 eval jobs.
    assert phases == [[Phase.FIT] * 5, [Phase.TEST] * 4 + [Phase.EVAL] * 3] * 2
    shards = runner.submissions[1][:4]
    assert [job.num_examples for job in shards] == [100, 100, 100, 59]
    rounds = json.loads((tmp_path / "results.json").read_text())["rounds"]
    assert [row["eval_selected"] for row in rounds] == [3, 3]
    assert [row["eval_accuracy"] for row in rounds] == [EVAL_ACCURACY] * 2
    # The shards' accuracies combined as correct counts (0, 10, 20 and 0.3 x 59 ~ 18) over the 359 examples.
    assert rounds[0]["test_accuracy"] == (0 + 10 + 20 + 18) / 359
