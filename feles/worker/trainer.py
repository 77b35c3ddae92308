"""Runs one job in torch: local training (fit) or local evaluation (eval) of a device."""

from __future__ import annotations

import time

import numpy as np
import torch

from feles.algorithms import LocalTask
from feles.data.dataset import rows
from feles.evaluation import EVAL_BATCH_SIZE, evaluate, loss_function
from feles.protocol import Job, JobResult, Phase, join_extra
from feles.seeding import numpy_rng
from feles.strategies import LocalDataOptimizer
from feles.worker.accelerator import to_cpu, to_device
from feles.worker.local_model import LocalModel, make_optimizer
from feles.worker.state import WorkerState

__all__ = ["device_examples", "make_optimizer", "run_job", "test_examples"]  # make_optimizer: its old home


def device_examples(state: WorkerState, job: Job) -> tuple[torch.Tensor, torch.Tensor]:
    """The examples the job uses: the local data strategy's choice among the device's partition.

    A fit job trains on the device's train partition, an eval job evaluates on its test partition.
    """
    data = state.repetition_data(job.repetition)
    chooser = state.local_data[job.phase]
    if job.phase is Phase.EVAL:
        indices = data.partitions.test_indices[job.device]
        positions = _positions(chooser, len(indices), job)
        chosen = torch.from_numpy(indices[positions])
        return rows(data.test_inputs, chosen), rows(data.dataset.test.y, chosen)
    indices = data.partitions.indices[job.device]
    positions = _positions(chooser, len(indices), job)
    labels = data.partitions.labels[job.device]
    return data.dataset.train.inputs(torch.from_numpy(indices[positions])), labels[torch.from_numpy(positions)]


def _positions(chooser: LocalDataOptimizer, available: int, job: Job) -> np.ndarray:
    if chooser.takes_all(available, job.num_examples):
        return np.arange(available)  # what `choose` returns then, without building a generator (~20 us)
    return chooser.choose(available, job.num_examples, numpy_rng(job.seed, "local-data"))


def test_examples(state: WorkerState, job: Job) -> tuple[torch.Tensor, torch.Tensor]:
    """The shard of the test split a test job evaluates."""
    assert job.test_examples is not None  # Job's validator guarantees it for test jobs
    data = state.repetition_data(job.repetition)
    start, stop = job.test_examples.start, job.test_examples.stop
    return data.test_inputs[start:stop], data.dataset.test.y[start:stop]


def run_job(
    state: WorkerState,
    job: Job,
    weights: dict[str, torch.Tensor],
    job_tensors: dict[str, torch.Tensor] | None = None,
) -> tuple[JobResult, dict[str, torch.Tensor]]:
    """Train or evaluate the job's device, or a test shard, from the global `weights`; result and tensors."""
    started = time.perf_counter()
    local = state.local_model(job.repetition)
    local.load(weights)
    model = local.module
    if job.phase is Phase.FIT:
        return _train(state, job, local, weights, job_tensors, started)
    x, y = test_examples(state, job) if job.phase is Phase.TEST else device_examples(state, job)
    x, y = x.to(state.device), y.to(state.device)
    # A device's eval batch size only prices its simulated time; the forward passes use the fast one.
    batch_size = job.batch_size if job.phase is Phase.TEST else EVAL_BATCH_SIZE
    evaluation = evaluate(model, x, y, batch_size=batch_size, metric=state.spec.simulation.metric)
    result = JobResult(
        job_id=job.id,
        worker_id=state.worker_id,
        loss=evaluation.loss,
        metric=evaluation.metric,
        num_examples=evaluation.num_examples,
        num_steps=0,
        train_seconds=time.perf_counter() - started,
    )
    return result, {}


def _train(
    state: WorkerState,
    job: Job,
    local: LocalModel,
    weights: dict[str, torch.Tensor],
    job_tensors: dict[str, torch.Tensor] | None,
    started: float,
) -> tuple[JobResult, dict[str, torch.Tensor]]:
    x, y = device_examples(state, job)
    x, y = x.to(state.device), y.to(state.device)
    # Batch order comes from a CPU generator: the same batches on any device.
    generator = torch.Generator().manual_seed(job.seed)
    # Layers that draw from the global generator (dropout) stay reproducible. The CPU generator alone:
    # torch.manual_seed also queues a lazy CUDA seeding with a formatted stack trace, ~0.4 ms a job.
    torch.default_generator.manual_seed(job.seed)
    if torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(job.seed)
    task = LocalTask(
        model=local.module,
        x=x,
        y=y,
        epochs=job.epochs,
        batch_size=job.batch_size,
        optimizer=local.fresh_optimizer(),
        generator=generator,
        global_weights=to_device(weights, state.device),
        extra=to_device(job_tensors or {}, state.device),
        loss=loss_function(state.spec.simulation.metric),
    )
    outcome = state.client.train(task)
    tensors = join_extra(local.weights(), to_cpu(outcome.extra))
    result = JobResult(
        job_id=job.id,
        worker_id=state.worker_id,
        loss=outcome.loss,
        num_examples=len(y),
        num_steps=outcome.num_steps,
        train_seconds=time.perf_counter() - started,
    )
    return result, tensors
