"""The jobs the loop queues: one per surviving device, one per test shard, all valid wire jobs."""

from __future__ import annotations

import numpy as np

from feles.orchestrator.round_jobs import device_jobs, job_template, shard_jobs
from feles.protocol import Job, Phase
from feles.seeding import torch_seed, torch_seeds
from feles.strategies import LocalWork

RUN_ID = "1f0c2a9e" + "0" * 24


def test_device_jobs_skip_failed_devices_and_carry_their_work_and_seed() -> None:
    selected = np.array([3, 8, 15, 42])
    work = LocalWork(selected, np.array([1, 2, 3, 4]), np.array([8, 16, 32, 64]), np.array([10, 20, 30, 40]))
    seeds = torch_seeds(7, "job-fit", (0, 5), selected)
    template = job_template(RUN_ID, 0, 5, Phase.FIT, model_version=6, lease_seconds=30.0)
    jobs = device_jobs(template, selected, np.array([False, True, False, False]), work, seeds)

    assert [job.device for job in jobs] == [3, 15, 42]
    assert [job.id for job in jobs] == ["1f0c2a9e.0.5.fit.3", "1f0c2a9e.0.5.fit.15", "1f0c2a9e.0.5.fit.42"]
    assert [(job.epochs, job.batch_size, job.num_examples) for job in jobs] == [(1, 8, 10), (3, 32, 30), (4, 64, 40)]
    assert jobs[2].seed == torch_seed(7, "job-fit", 0, 5, 42)
    assert {(job.model_version, job.round, job.lease_seconds, job.phase) for job in jobs} == {(6, 5, 30.0, Phase.FIT)}
    for job in jobs:  # built without validation, so check that each is what the wire model accepts
        assert Job.model_validate_json(job.model_dump_json()) == job


def test_shard_jobs_cover_the_test_split_in_order() -> None:
    template = job_template(RUN_ID, 1, 2, Phase.TEST, model_version=3, lease_seconds=60.0)
    jobs = shard_jobs(template, test_size=2500, shard_size=1000)

    assert [job.id for job in jobs] == [f"1f0c2a9e.1.2.test.{shard}" for shard in range(3)]
    assert [(job.test_examples.start, job.test_examples.stop) for job in jobs if job.test_examples] == [
        (0, 1000),
        (1000, 2000),
        (2000, 2500),
    ]
    assert [job.num_examples for job in jobs] == [1000, 1000, 500]
    for job in jobs:
        assert job.device is None and job.model_version == 3
        assert Job.model_validate_json(job.model_dump_json()) == job


def test_an_empty_test_split_makes_no_test_job() -> None:
    assert len(shard_jobs(job_template(RUN_ID, 0, 0, Phase.TEST, 1, 60.0), test_size=0, shard_size=100)) == 0


def test_device_jobs_are_the_jobs_model_copy_makes_and_independent_of_each_other() -> None:
    selected = np.array([2, 9])
    work = LocalWork(selected, np.array([1, 2]), np.array([8, 16]), np.array([10, 20]))
    template = job_template(RUN_ID, 0, 1, Phase.EVAL, model_version=2, lease_seconds=30.0)
    jobs = device_jobs(template, selected, np.array([False, False]), work, np.array([5, 6]))
    copied = template.model_copy(
        update={"id": "1f0c2a9e.0.1.eval.2", "device": 2, "epochs": 1, "batch_size": 8, "num_examples": 10, "seed": 5}
    )
    assert jobs[0] == copied and repr(jobs[0]) == repr(copied)
    assert jobs[0].model_dump_json() == copied.model_dump_json()
    assert jobs[0].model_fields_set == copied.model_fields_set
    marked = jobs.with_tensors([0])  # as the loop marks jobs with tensors
    assert marked[0] == jobs[0].model_copy(update={"has_tensors": True})
    assert not jobs[0].has_tensors and not marked[1].has_tensors
    assert template.id == "" and template.device is None
