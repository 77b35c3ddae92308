"""Stacked training matches one-by-one training within float tolerance, and falls back where it does not apply."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from feles.algorithms import ClientAlgorithm, LocalTask, build_client
from feles.algorithms.fedprox import FedProxClient
from feles.config import AlgorithmsSection
from feles.models import build_model
from feles.protocol import Job, Phase
from feles.worker.job_groups import run_jobs, stack_groups
from feles.worker.stacked import LocalRule, StackedTask, local_rule, stackable_model, train_stacked
from feles.worker.trainer import run_job
from tests.unit.worker_states import digits_state, fit_job, initial_weights

SHAPE = (1, 8, 8)
RULES = {
    "sgd": (LocalRule(0.05), ClientAlgorithm({})),
    "sgd-momentum-decay": (LocalRule(0.05, momentum=0.9, weight_decay=1e-3), ClientAlgorithm({})),
    "fedprox": (LocalRule(0.05, momentum=0.5, mu=0.1), FedProxClient({"mu": 0.1})),
}


def _data(count: int, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [
        (torch.randn(size, *SHAPE, generator=generator), torch.randint(0, 10, (size,), generator=generator))
        for _ in range(count)
    ]


def _one_by_one(model: nn.Module, weights: dict, data: list, rule: LocalRule, client: ClientAlgorithm) -> list:
    outcomes = []
    for seed, (x, y) in enumerate(data):
        model.load_state_dict(weights)
        optimizer = torch.optim.SGD(
            model.parameters(), lr=rule.lr, momentum=rule.momentum, weight_decay=rule.weight_decay
        )
        generator = torch.Generator().manual_seed(seed)
        outcome = client.train(LocalTask(model, x, y, 2, 8, optimizer, generator, weights))
        outcomes.append(({k: v.detach().clone() for k, v in model.state_dict().items()}, outcome))
    return outcomes


@pytest.mark.parametrize("model_name", ["logreg", "mlp_small", "cnn"])
@pytest.mark.parametrize("rule_name", list(RULES))
def test_stacked_training_matches_one_by_one_within_float_tolerance(model_name: str, rule_name: str) -> None:
    rule, client = RULES[rule_name]
    torch.manual_seed(0)
    model = build_model(model_name, SHAPE, 10)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    data = _data(count=4, size=20)  # 20 examples in batches of 8: a short last batch each epoch
    expected = _one_by_one(model, weights, data, rule, client)
    tasks = [StackedTask(x, y, torch.Generator().manual_seed(seed)) for seed, (x, y) in enumerate(data)]
    outcomes = train_stacked(model, weights, tasks, epochs=2, batch_size=8, rule=rule)
    for (tensors, outcome), stacked in zip(expected, outcomes, strict=True):
        assert stacked.num_steps == outcome.num_steps == 6
        assert stacked.loss == pytest.approx(outcome.loss, abs=1e-6)
        assert stacked.weights.keys() == tensors.keys()
        for name, tensor in tensors.items():
            torch.testing.assert_close(stacked.weights[name], tensor, rtol=1e-5, atol=1e-6)
    first = next(iter(weights))  # each task trained on its own data: the stacked models differ
    assert not torch.equal(outcomes[0].weights[first], outcomes[1].weights[first])


def test_tasks_of_different_sizes_are_refused() -> None:
    model = build_model("logreg", SHAPE, 10)
    (x, y), (x2, y2) = _data(1, 20) + _data(1, 21)
    tasks = [StackedTask(x, y, torch.Generator()), StackedTask(x2, y2, torch.Generator())]
    with pytest.raises(ValueError, match=r"same number of examples, got \[20, 21\]"):
        train_stacked(model, model.state_dict(), tasks, 1, 8, LocalRule(0.1))


class _FunctionalDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.dropout(self.linear(x.flatten(1)), 0.5, training=True)


def test_a_random_op_in_the_forward_pass_is_refused_not_shared_between_tasks() -> None:
    model = _FunctionalDropout()
    tasks = [StackedTask(x, y, torch.Generator()) for x, y in _data(2, 8)]
    with pytest.raises(RuntimeError, match="randomness"):
        train_stacked(model, model.state_dict(), tasks, 1, 8, LocalRule(0.1))


@pytest.mark.parametrize(
    ("module", "stackable"),
    [
        (build_model("logreg", SHAPE, 10), True),
        (build_model("cnn", SHAPE, 10), True),
        (nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)), False),
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)), False),
        (nn.LSTM(4, 4), False),
    ],
)
def test_only_stateless_deterministic_layers_stack(module: nn.Module, stackable: bool) -> None:
    assert stackable_model(module) is stackable


@pytest.mark.parametrize(
    ("algorithm", "optimizer", "rule"),
    [
        ("fedavg", "sgd", LocalRule(0.1, 0.9, 0.0, 0.0)),
        ("fednova", "sgd", LocalRule(0.1, 0.9, 0.0, 0.0)),
        ("fedprox", "sgd", LocalRule(0.1, 0.9, 0.0, 0.01)),
        ("scaffold", "sgd", None),
        ("feddyn", "sgd", None),
        ("fedavg", "adam", None),
    ],
)
def test_the_local_rule_applies_to_plain_sgd_fedavg_fednova_and_fedprox(
    algorithm: str, optimizer: str, rule: LocalRule | None
) -> None:
    config = AlgorithmsSection(federated_algorithm=algorithm, optimizer=optimizer, learning_rate=0.1, momentum=0.9)
    assert local_rule(config, build_client(config)) == rule


def _eval_job(device: int) -> Job:
    return fit_job(device, seed=1).model_copy(update={"id": f"eval-{device}", "phase": Phase.EVAL})


def test_alike_fit_jobs_are_grouped_up_to_the_stack_size_in_order() -> None:
    state = digits_state()
    jobs = [fit_job(d, seed=d) for d in range(5)] + [_eval_job(9), fit_job(7, seed=7, num_examples=30)]
    groups = stack_groups(state, jobs, stack=3)
    assert [[job.id for job in group] for group in groups] == [
        ["fit-0", "fit-1", "fit-2"],
        ["fit-3", "fit-4"],
        ["eval-9"],
        ["fit-7"],
    ]
    assert all(len(group) == 1 for group in stack_groups(state, jobs, stack=1))


def test_a_regression_run_never_stacks() -> None:
    state = digits_state({"simulation": {"metric": "mse"}})
    jobs = [fit_job(d, seed=d) for d in range(3)]
    assert [len(group) for group in stack_groups(state, jobs, stack=3)] == [1, 1, 1]


def test_held_jobs_run_stacked_within_tolerance_and_the_rest_exactly_as_alone() -> None:
    state = digits_state({"algorithms": {"federated_algorithm": "fedprox", "algorithm_params": {"mu": 0.1}}})
    weights = initial_weights(state)
    jobs = [fit_job(d, seed=d) for d in range(4)] + [_eval_job(9), fit_job(7, seed=7, num_examples=30)]
    by_id = {job.id: weights for job in jobs}
    together = run_jobs(state, jobs, by_id, stack=4)
    alone = [run_job(state, job, weights) for job in jobs]
    for job, (result, tensors), (expected, expected_tensors) in zip(jobs, together, alone, strict=True):
        assert result.job_id == job.id and result.num_steps == expected.num_steps
        assert result.loss == pytest.approx(expected.loss, abs=1e-6)
        for name, tensor in expected_tensors.items():
            if job.id in ("eval-9", "fit-7"):  # not stacked: the very same computation
                assert torch.equal(tensors[name], tensor)
            else:
                torch.testing.assert_close(tensors[name], tensor, rtol=1e-5, atol=1e-6)


def test_with_stacking_off_or_an_adaptive_optimizer_every_job_is_bit_identical_to_alone() -> None:
    for overrides, stack in (({}, 1), ({"algorithms": {"optimizer": "adam"}}, 4)):
        state = digits_state(overrides)
        weights = initial_weights(state)
        jobs = [fit_job(d, seed=d) for d in range(3)]
        together = run_jobs(state, jobs, {job.id: weights for job in jobs}, stack=stack)
        for job, (_, tensors) in zip(jobs, together, strict=True):
            _, expected = run_job(state, job, weights)
            assert all(torch.equal(tensors[name], expected[name]) for name in expected)
