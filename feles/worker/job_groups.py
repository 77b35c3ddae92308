"""The jobs a worker holds at once, run together: alike fit jobs stacked (opt-in), every other job one by one.

Stacking is off unless `stack` > 1: stacked results match one-by-one training within float tolerance, not bit
for bit, and which jobs meet on one worker depends on the number of workers (docs/accelerators.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import torch

from feles.protocol import Job, JobResult, Phase
from feles.worker.stacked import StackedTask, local_rule, stackable_model, train_stacked
from feles.worker.state import WorkerState
from feles.worker.trainer import device_examples, run_job

log = logging.getLogger("feles.worker")

JobOutput = tuple[JobResult, dict[str, torch.Tensor]]
StackKey = tuple[int, int, int, int, int]


def stack_key(job: Job) -> StackKey:
    """Jobs with one key train one model from one global version on batches of one shape."""
    return (job.repetition, job.model_version, job.num_examples, job.epochs, job.batch_size)


def stack_groups(state: WorkerState, jobs: Sequence[Job], stack: int) -> list[list[Job]]:
    """The jobs in groups of at most `stack` alike fit jobs; a job that cannot be stacked is a group of one.

    Groups keep the order of `jobs` (the first job of each group decides where it stands).
    """
    # The stacked objective is cross-entropy: a regression run (metric mae or mse) trains one by one.
    classifying = state.spec.simulation.metric == "accuracy"
    rule = local_rule(state.spec.algorithms, state.client) if classifying else None
    groups: dict[StackKey | str, list[list[Job]]] = {}
    order: list[list[Job]] = []
    for job in jobs:
        eligible = stack > 1 and rule is not None and job.phase is Phase.FIT and not job.has_tensors
        if not eligible or not stackable_model(state.module(job.repetition)):
            order.append([job])
            continue
        chunks = groups.setdefault(stack_key(job), [])
        if not chunks or len(chunks[-1]) >= stack:
            chunks.append([])
            order.append(chunks[-1])
        chunks[-1].append(job)
    return order


def run_jobs(
    state: WorkerState,
    jobs: Sequence[Job],
    weights: Mapping[str, dict[str, torch.Tensor]],
    job_tensors: Mapping[str, dict[str, torch.Tensor]] | None = None,
    stack: int = 1,
) -> list[JobOutput]:
    """Each job's result and tensors, in the order of `jobs`; `weights` and `job_tensors` are by job id."""
    tensors_of = job_tensors or {}
    outputs: dict[str, JobOutput] = {}
    for group in stack_groups(state, jobs, stack):
        if len(group) > 1:
            outputs.update(_run_stacked(state, group, weights[group[0].id]))
        else:
            job = group[0]
            outputs[job.id] = run_job(state, job, weights[job.id], tensors_of.get(job.id))
    return [outputs[job.id] for job in jobs]


def _run_stacked(state: WorkerState, group: list[Job], weights: dict[str, torch.Tensor]) -> dict[str, JobOutput]:
    started = time.perf_counter()
    rule = local_rule(state.spec.algorithms, state.client)
    assert rule is not None  # stack_groups stacks only jobs with a rule
    tasks = []
    for job in group:
        x, y = device_examples(state, job)
        tasks.append(StackedTask(x.to(state.device), y.to(state.device), torch.Generator().manual_seed(job.seed)))
    first = group[0]
    model = state.module(first.repetition)
    try:
        outcomes = train_stacked(model, weights, tasks, first.epochs, first.batch_size, rule)
    except RuntimeError as error:
        # A random op in the model's forward pass (vmap refuses randomness): train these jobs one by one.
        log.info("stacked training refused (%s); training %d jobs one by one", str(error)[:200], len(group))
        return {job.id: run_job(state, job, weights) for job in group}
    seconds = (time.perf_counter() - started) / len(group)  # each job's share of the stacked pass
    log.debug("trained %d alike fit jobs stacked", len(group))
    return {
        job.id: (
            JobResult(
                job_id=job.id,
                worker_id=state.worker_id,
                loss=outcome.loss,
                num_examples=len(task.y),
                num_steps=outcome.num_steps,
                train_seconds=seconds,
            ),
            outcome.weights,
        )
        for job, task, outcome in zip(group, tasks, outcomes, strict=True)
    }
