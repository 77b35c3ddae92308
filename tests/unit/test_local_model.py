"""A worker reuses one module and one optimizer for every job: each job must still give, bit for bit, what a new
module loaded with load_state_dict and a new optimizer give (feles/worker/local_model.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from feles.algorithms import ClientAlgorithm, LocalTask
from feles.config import AlgorithmsSection
from feles.protocol import Job, Phase
from feles.worker.local_model import LocalModel, make_optimizer
from feles.worker.state import WorkerState
from feles.worker.trainer import run_job
from tests.unit.worker_states import digits_state, fit_job, initial_weights

Weights = dict[str, torch.Tensor]


def eval_job(device: int, seed: int) -> Job:
    return fit_job(device, seed).model_copy(update={"id": f"eval-{device}", "phase": Phase.EVAL, "num_examples": 10})


def job_sequence() -> list[Job]:
    """Fit jobs of different devices, sizes, epochs and batch sizes, with eval jobs in between."""
    return [
        fit_job(3, 11, num_examples=40, epochs=2, batch_size=16),
        eval_job(4, 12),
        fit_job(5, 13, num_examples=25, epochs=1, batch_size=8),
        fit_job(3, 14, num_examples=40, epochs=3, batch_size=32),
        eval_job(6, 15),
        fit_job(7, 16, num_examples=12, epochs=2, batch_size=5),
    ]


def alone(overrides: dict[str, Any], job: Job, weights: Weights) -> tuple[Any, Weights]:
    """The job on a worker that has never run another one: a new module, a new optimizer."""
    state = digits_state(overrides)
    return run_job(state, job, weights)


def same_bits(a: Weights, b: Weights) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


@pytest.mark.parametrize(
    "algorithms",
    [
        {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 0.01},
        {"optimizer": "adam"},
        {"optimizer": "adagrad"},  # fills its state when built: rebuilt per job
        {"optimizer": "rmsprop", "momentum": 0.5},
        {"optimizer": "sgd", "federated_algorithm": "fedprox", "algorithm_params": {"mu": 0.1}},
    ],
)
def test_a_reused_module_and_optimizer_give_what_fresh_ones_give_job_after_job(algorithms: dict[str, Any]) -> None:
    overrides = {"algorithms": algorithms}
    worker = digits_state(overrides)
    weights = initial_weights(worker, seed=1)
    for index, job in enumerate(job_sequence()):
        result, tensors = run_job(worker, job, weights)
        expected_result, expected_tensors = alone(overrides, job, weights)
        assert (result.loss, result.metric, result.num_steps) == (
            expected_result.loss,
            expected_result.metric,
            expected_result.num_steps,
        ), f"job {index}"
        assert same_bits(tensors, expected_tensors), f"job {index}"
        if tensors:
            weights = tensors  # the next jobs start from another global model, as after an aggregation


def test_the_optimizer_starts_empty_and_with_its_settings_for_every_job() -> None:
    module = nn.Linear(3, 2)
    config = AlgorithmsSection(optimizer="sgd", momentum=0.9, learning_rate=0.1)
    local = LocalModel(module, config)
    optimizer = local.fresh_optimizer()
    module(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    optimizer.param_groups[0]["lr"] = 5.0  # a plug-in that changes its settings within its job
    assert optimizer.state and module.weight.grad is not None
    again = local.fresh_optimizer()
    assert not again.state
    assert module.weight.grad is None and module.bias.grad is None
    assert again.param_groups[0]["lr"] == 0.1 and again.param_groups[0]["momentum"] == 0.9


def test_load_copies_weights_and_buffers_as_load_state_dict_does() -> None:
    module = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    reference = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    source = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    source.train()
    source(torch.randn(8, 4))  # running statistics and the batch counter move
    weights = {name: tensor.detach().clone() for name, tensor in source.state_dict().items()}
    local = LocalModel(module, AlgorithmsSection())
    local.load(weights)
    reference.load_state_dict(weights)
    assert same_bits(local.weights(), {name: t.detach().clone() for name, t in reference.state_dict().items()})
    assert int(local.weights()["1.num_batches_tracked"]) == 1


def test_load_refuses_what_load_state_dict_refuses() -> None:
    local = LocalModel(nn.Linear(3, 2), AlgorithmsSection())
    with pytest.raises(RuntimeError, match="Missing key"):
        local.load({"weight": torch.zeros(2, 3)})
    with pytest.raises(RuntimeError, match="size mismatch"):
        local.load({"weight": torch.zeros(2, 4), "bias": torch.zeros(2)})


def test_a_module_with_its_own_loading_goes_through_load_state_dict() -> None:
    class Scaled(nn.Linear):
        def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
            state_dict[prefix + "weight"] = state_dict[prefix + "weight"] * 2
            super()._load_from_state_dict(state_dict, prefix, *args)

    local = LocalModel(Scaled(2, 1), AlgorithmsSection())
    local.load({"weight": torch.ones(1, 2), "bias": torch.zeros(1)})
    assert torch.equal(local.module.weight.detach(), torch.full((1, 2), 2.0))


def test_local_training_equals_the_textbook_loop() -> None:
    """ClientAlgorithm.train clears gradients, takes the cross-entropy without building a module and steps
    feles' own SGD: the same steps as nn.CrossEntropyLoss, zero_grad and torch.optim.SGD."""
    torch.manual_seed(0)
    x, y = torch.randn(30, 5), torch.randint(0, 3, (30,))
    start = nn.Linear(5, 3).state_dict()
    config = AlgorithmsSection(optimizer="sgd", momentum=0.9, learning_rate=0.05)

    ours = nn.Linear(5, 3)
    ours.load_state_dict(start)
    task = LocalTask(
        ours, x, y, 2, 8, make_optimizer(list(ours.parameters()), config), torch.Generator().manual_seed(4), start
    )
    outcome = ClientAlgorithm({}).train(task)

    theirs = nn.Linear(5, 3)
    theirs.load_state_dict(start)
    optimizer, loss_fn, generator = (
        torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9),
        nn.CrossEntropyLoss(),
        torch.Generator().manual_seed(4),
    )
    total, steps = 0.0, 0
    for _ in range(2):
        order = torch.randperm(30, generator=generator)
        for begin in range(0, 30, 8):
            batch = order[begin : begin + 8]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(theirs(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            total += loss.item()
            steps += 1
    assert outcome.loss == total / steps and outcome.num_steps == steps
    assert same_bits(dict(ours.state_dict()), dict(theirs.state_dict()))


def test_a_job_that_takes_every_example_draws_no_sample_and_trains_on_all_in_order() -> None:
    state: WorkerState = digits_state()
    chooser = state.local_data[Phase.FIT]
    assert chooser.takes_all(12, 12) and chooser.takes_all(12, 20) and not chooser.takes_all(12, 11)
    rng = np.random.default_rng(3)
    assert np.array_equal(chooser.choose(12, 12, rng), np.arange(12))
