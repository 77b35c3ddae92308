"""What a round hands to the workers: its fit jobs, then its eval jobs and test shards together with the next
round's fit jobs in one hand-out (all three need the new model, so a round waits for one phase end instead of
two), and what the loop makes of the answers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from feles.config import SimulationSpec, parse_spec
from feles.orchestrator.job_block import JobBlock
from feles.orchestrator.loop import RunParts, SimulationLoop
from feles.orchestrator.model_store import ModelStore
from feles.orchestrator.results import ResultsDocument
from feles.orchestrator.runner import JobRunner, Outcomes
from feles.orchestrator.state import Progress
from feles.protocol import Job, JobResult, Phase, SimulationPhase
from feles.strategies import SelectionContext, Selector

#: What the played workers answer: a test shard's accuracy is its index / 10, an eval job's 0.9.
EVAL_ACCURACY = 0.9


class AnsweringRunner(JobRunner):
    """Workers played in process: each submission is recorded and answered at once (fit jobs return the model)."""

    lease_seconds = 10.0

    def __init__(self, models: ModelStore) -> None:
        self.models = models
        self.submissions: list[list[Job]] = []
        #: (call, "phase round" of each block) in the order the loop made them.
        self.calls: list[tuple[str, list[str]]] = []
        self._done: dict[str, tuple[JobResult, Mapping[str, torch.Tensor]]] = {}

    def submit(self, blocks: Sequence[JobBlock], payloads: Mapping[str, bytes]) -> None:
        jobs = [job for block in blocks for job in block]
        self.submissions.append(jobs)
        self.calls.append(("submit", _phases(blocks)))
        for job in jobs:
            self._done[job.id] = (self._answer(job), dict(self.models.current()) if job.phase is Phase.FIT else {})

    def _answer(self, job: Job) -> JobResult:
        metric = int(job.id.rsplit(".", 1)[1]) / 10 if job.phase is Phase.TEST else EVAL_ACCURACY
        return JobResult(job_id=job.id, worker_id="w", loss=1.0, metric=metric, num_examples=job.num_examples,
                         num_steps=1 if job.phase is Phase.FIT else 0, train_seconds=0.0)  # fmt: skip

    def wait(self, blocks: Sequence[JobBlock]) -> None:
        self.calls.append(("wait", _phases(blocks)))

    def take(self, blocks: Sequence[JobBlock]) -> Outcomes:
        self.calls.append(("take", _phases(blocks)))
        return Outcomes({job_id: self._done.pop(job_id) for block in blocks for job_id in block.ids})

    def stop(self) -> None:
        pass


def _phases(blocks: Sequence[JobBlock]) -> list[str]:
    return [f"{block.template.phase.value} {block.template.round}" for block in blocks]


def _spec(tmp_path: Path, num_rounds: int, **stop_conds: object) -> SimulationSpec:
    return parse_spec(
        {
            "simulation": {"dataset": "digits", "model": "logreg", "num_rounds": num_rounds,
                           "output_folder": str(tmp_path), "test_shard_size": 100, "stop_conds": stop_conds},
            "devices": {"num": 10, "p_fail": 0.0, "p_available": 1.0},
            "data": {"num_examples_mean": 20},
            "algorithms": {"fit": {"params": {"k": 0.5}}, "eval": {"params": {"k": 0.3}}},
        }
    )  # fmt: skip


def _run(spec: SimulationSpec) -> tuple[SimulationLoop, AnsweringRunner]:
    models = ModelStore()
    runner = AnsweringRunner(models)
    parts = RunParts(spec, "0" * 32, "logreg", runner, models, Progress(), ResultsDocument(spec, "0" * 32))
    loop = SimulationLoop(parts)
    loop.run()
    assert loop.progress.phase is SimulationPhase.SUCCEEDED, loop.progress.message
    return loop, runner


def test_the_next_rounds_fit_goes_out_with_the_evaluation_and_is_taken_after_the_round_is_recorded(
    tmp_path: Path,
) -> None:
    _, runner = _run(_spec(tmp_path, num_rounds=3))
    evaluation = ["test {r}", "eval {r}"]
    expected = [("submit", ["fit 0"])]
    for r in range(3):
        eval_blocks = [name.format(r=r) for name in evaluation]
        # One hand-out: a lease sees the evaluation and the next round's fit queued together, never a part.
        handed_out = [*eval_blocks, f"fit {r + 1}"] if r < 2 else eval_blocks
        expected += [("wait", [f"fit {r}"]), ("take", [f"fit {r}"]), ("submit", handed_out)]
        expected += [("wait", eval_blocks), ("take", eval_blocks)]
    assert runner.calls == expected
    # The next round's fit trains the model its evaluation evaluates: the one the round's aggregation made.
    versions = [{job.model_version for job in jobs} for jobs in runner.submissions]
    assert len(versions[1]) == 1 and versions[1] != versions[0]


def test_a_round_that_meets_its_stop_condition_withdraws_the_next_rounds_fit(tmp_path: Path) -> None:
    # The played eval devices all reach 0.9: a target of 0.5 on them stops the repetition after its first round.
    loop, runner = _run(_spec(tmp_path, num_rounds=5, metric=0.5, target="eval"))
    assert runner.calls[-3:] == [("wait", ["test 0", "eval 0"]), ("take", ["test 0", "eval 0"]), ("take", ["fit 1"])]
    assert loop.progress.stop_reason == "TargetAccuracyReached"
    results = json.loads((tmp_path / "results.json").read_text())
    assert [row["round"] for row in results["rounds"]] == [0]
    assert results["repetitions"][0]["rounds"] == 1


def test_the_eval_jobs_and_test_shards_of_a_round_go_out_together_shards_first(tmp_path: Path) -> None:
    _, runner = _run(_spec(tmp_path, num_rounds=2))

    phases = [[job.phase for job in jobs] for jobs in runner.submissions]
    # The first round's 5 fit jobs; then, per round, the test split's shards (359 digits in shards of 100) before
    # 3 eval jobs, and the next round's 5 fit jobs behind them in the same hand-out (none after the last round).
    evaluation = [Phase.TEST] * 4 + [Phase.EVAL] * 3
    assert phases == [[Phase.FIT] * 5, evaluation + [Phase.FIT] * 5, evaluation]
    shards = runner.submissions[1][:4]
    assert [job.num_examples for job in shards] == [100, 100, 100, 59]
    rounds = json.loads((tmp_path / "results.json").read_text())["rounds"]
    assert [row["eval_selected"] for row in rounds] == [3, 3]
    assert [row["eval_accuracy"] for row in rounds] == [EVAL_ACCURACY] * 2
    # The shards' accuracies combined as correct counts (0, 10, 20 and 0.3 x 59 ~ 18) over the 359 examples.
    assert rounds[0]["test_accuracy"] == (0 + 10 + 20 + 18) / 359


class FailsFromRoundTwo(Selector):
    """Every available device, until round 2, whose planning raises (a plug-in's bug)."""

    def select_devices(self, context: SelectionContext) -> np.ndarray:
        if context.round >= 2:
            raise ValueError("this selector breaks at round 2")
        return context.available


def test_a_plan_that_fails_for_the_next_round_keeps_the_round_before_it(tmp_path: Path) -> None:
    # Round 2 is planned while round 1 ends: before, its failure lost round 1's evaluation and record.
    spec = _spec(tmp_path, num_rounds=4)
    spec.algorithms.fit.selection = f"{__name__}:FailsFromRoundTwo"
    models = ModelStore()
    runner = AnsweringRunner(models)
    parts = RunParts(spec, "0" * 32, "logreg", runner, models, Progress(), ResultsDocument(spec, "0" * 32))
    loop = SimulationLoop(parts)
    loop.run()
    assert loop.progress.phase is SimulationPhase.FAILED
    assert loop.progress.message == "ValueError: this selector breaks at round 2"
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "failed"
    assert [row["round"] for row in results["rounds"]] == [0, 1]
    assert [row["eval_accuracy"] for row in results["rounds"]] == [EVAL_ACCURACY] * 2
    assert runner.calls[-2:] == [("wait", ["test 1", "eval 1"]), ("take", ["test 1", "eval 1"])]
