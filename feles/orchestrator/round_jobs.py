"""The jobs of a round, built as pure functions: one block per phase, the template holding what its jobs share."""

from __future__ import annotations

import numpy as np

from feles.evaluation import EVAL_BATCH_SIZE, shard_ranges
from feles.orchestrator.job_block import JobBlock
from feles.protocol import Job, Phase
from feles.strategies import LocalWork


def job_template(
    run_id: str, repetition: int, round_: int, phase: Phase, model_version: int, lease_seconds: float
) -> Job:
    """A job holding the fields shared by every job of one phase of a round.

    device_jobs and shard_jobs hold the per-job fields (id, device or test examples, work, seed) beside it.
    """
    # model_construct: the values are the loop's own, and validating 10,000 jobs a round costs ~0.2 s.
    return Job.model_construct(
        id="",
        run_id=run_id,
        repetition=repetition,
        round=round_,
        phase=phase,
        device=None,
        test_examples=None,
        model_version=model_version,
        epochs=1,
        batch_size=1,
        num_examples=1,
        seed=0,
        lease_seconds=lease_seconds,
    )


def _id_prefix(template: Job) -> str:
    # Job ids start with the run id: a result meant for another run is never taken for this one's.
    return f"{template.run_id[:8]}.{template.repetition}.{template.round}.{template.phase.value}"


def device_jobs(
    template: Job, selected: np.ndarray, failed: np.ndarray, work: LocalWork, seeds: np.ndarray
) -> JobBlock:
    """A fit or eval job for each selected device that did not fail, in device order."""
    kept = ~failed
    devices = selected[kept].tolist()
    prefix = _id_prefix(template)
    return JobBlock(
        template,
        ids=[f"{prefix}.{device}" for device in devices],
        devices=devices,
        test_examples=[None] * len(devices),
        epochs=work.epochs[kept].tolist(),
        batch_sizes=work.batch_size[kept].tolist(),
        num_examples=work.num_examples[kept].tolist(),
        seeds=seeds[kept].tolist(),
    )


def shard_jobs(template: Job, test_size: int, shard_size: int) -> JobBlock:
    """The test jobs of a round: one per shard of `shard_size` test examples, in shard order."""
    prefix, shards = _id_prefix(template), shard_ranges(test_size, shard_size)
    return JobBlock(
        template,
        ids=[f"{prefix}.{shard}" for shard in range(len(shards))],
        devices=[None] * len(shards),
        test_examples=[(start, stop) for start, stop in shards],
        epochs=[1] * len(shards),
        batch_sizes=[EVAL_BATCH_SIZE] * len(shards),
        num_examples=[stop - start for start, stop in shards],
        seeds=[0] * len(shards),
    )
