"""feles.orchestrator.job_block: a phase's jobs as columns, the Jobs they stand for and the JSON the lease sends."""

from __future__ import annotations

import numpy as np
import pytest

from feles.orchestrator.batching import TRAINING_PASS_COST, job_work
from feles.orchestrator.job_block import JobBlock, batch_json, blocks_of
from feles.orchestrator.round_jobs import device_jobs, job_template, shard_jobs
from feles.protocol import ExampleRange, Job, JobBatch, Phase
from feles.strategies import LocalWork

RUN_ID = "5be0c2a9" + "0" * 24


def fit_block(devices: int = 6, round_: int = 2) -> JobBlock:
    selected = np.arange(devices) * 3 + 1
    work = LocalWork(selected, np.arange(devices) % 3 + 1, np.full(devices, 16), np.arange(devices) + 5)
    failed = np.zeros(devices, dtype=bool)
    failed[1] = True
    template = job_template(RUN_ID, 1, round_, Phase.FIT, model_version=round_ + 1, lease_seconds=45.5)
    return device_jobs(template, selected, failed, work, np.arange(devices) * 1_000_003)


def pydantic_json(jobs: list[Job]) -> str:
    return JobBatch.model_construct(jobs=jobs).model_dump_json()


@pytest.mark.parametrize(
    "block",
    [
        fit_block(),
        fit_block().with_tensors([0, 3]),
        shard_jobs(job_template(RUN_ID, 0, 7, Phase.TEST, 8, 30.0), test_size=2_345, shard_size=1_000),
    ],
    ids=["fit", "fit-with-tensors", "test-shards"],
)
def test_the_json_of_any_range_is_what_pydantic_dumps_for_those_jobs(block: JobBlock) -> None:
    for start, stop in [(0, len(block)), (1, 2), (len(block) - 2, len(block)), (0, 1)]:
        rendered = batch_json([block.json_range(start, stop)])
        assert rendered == pydantic_json(block[start:stop])
        assert JobBatch.model_validate_json(rendered).jobs == block[start:stop]  # and a valid wire batch


def test_ids_and_values_that_json_must_escape_render_as_pydantic_renders_them() -> None:
    odd = ['a"quoted"', "back\\slash", "tab\there", "unicodé ✓", "newline\n"]
    jobs = [
        Job(id=job_id, run_id='run "x"', repetition=0, round=0, phase=Phase.EVAL, device=i, model_version=0, epochs=1,
            batch_size=4, num_examples=3, seed=i, lease_seconds=1e16)
        for i, job_id in enumerate(odd)
    ]  # fmt: skip
    (block,) = blocks_of(jobs)
    assert batch_json([block.json_range(0, len(block))]) == pydantic_json(jobs)


def test_a_block_is_a_sequence_of_the_jobs_it_holds() -> None:
    block = fit_block()
    assert len(block) == 5 and [job.device for job in block] == [1, 7, 10, 13, 16]
    assert block[-1] == block[4] and block[1:3] == [block[1], block[2]]
    with pytest.raises(IndexError, match="position 5 out of range for a block of 5"):
        block[5]


def test_a_jobs_work_is_its_passes_a_fit_jobs_at_the_training_pass_cost() -> None:
    block = fit_block()
    work = job_work(Phase.FIT, block.epochs, block.num_examples, TRAINING_PASS_COST)
    assert work == [3 * job.epochs * job.num_examples for job in block] == [15, 63, 24, 54, 90]
    assert job_work(Phase.FIT, block.epochs, block.num_examples, 4.4) == [22, 92, 35, 79, 132]  # rounded
    shards = shard_jobs(job_template(RUN_ID, 0, 7, Phase.TEST, 8, 30.0), test_size=2_345, shard_size=1_000)
    # A test shard is one inference pass over its examples, whatever a training pass costs.
    assert job_work(Phase.TEST, shards.epochs, shards.num_examples, 4.4) == [1_000, 1_000, 345]


def test_jobs_built_one_by_one_become_one_block_per_run_of_shared_fields() -> None:
    template = job_template(RUN_ID, 0, 3, Phase.TEST, 4, 30.0)
    shard = template.model_copy(
        update={"id": "s0", "test_examples": ExampleRange(start=0, stop=10), "num_examples": 10}
    )
    fit = fit_block(4, round_=3)
    jobs = [*fit, shard, *fit_block(3, round_=4)]
    blocks = blocks_of(jobs)
    assert [len(block) for block in blocks] == [3, 1, 2]
    assert [job for block in blocks for job in block] == jobs
    assert blocks[1][0].test_examples == ExampleRange(start=0, stop=10) and blocks[1][0].device is None
    tensors = blocks_of([jobs[0].model_copy(update={"has_tensors": True}), jobs[1]])
    assert [job.has_tensors for job in tensors[0]] == [True, False]
