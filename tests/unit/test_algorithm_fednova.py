"""FedNova: normalised averaging by each device's local steps (Wang et al. 2020)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
import torch

from feles.algorithms import DeviceUpdate, ServerAlgorithm, build_server
from feles.algorithms.aggregation import fednova_norm
from tests.unit.test_algorithm_common import section, update

Aggregate = Callable[[Mapping[str, torch.Tensor], Sequence[DeviceUpdate]], dict[str, torch.Tensor]]


def fednova(**fields: Any) -> ServerAlgorithm:
    return build_server(section("fednova", **fields))


def fedavg() -> ServerAlgorithm:
    return build_server(section("fedavg"))


def test_norm_is_the_number_of_steps_for_vanilla_sgd() -> None:
    assert fednova_norm(7) == 7.0
    assert fednova_norm(1, momentum=0.0, learning_rate=0.1, mu=0.0) == 1.0


@pytest.mark.parametrize(("steps", "rho"), [(1, 0.9), (5, 0.5), (20, 0.9)])
def test_norm_with_momentum_is_the_sum_of_the_momentum_weights(steps: int, rho: float) -> None:
    # a_i = [1 - rho^tau, ..., 1 - rho] / (1 - rho)
    expected = sum((1 - rho**k) / (1 - rho) for k in range(1, steps + 1))
    assert fednova_norm(steps, momentum=rho) == pytest.approx(expected)


def test_norm_with_a_proximal_term() -> None:
    # FedProx's pull shrinks old gradients by (1 - eta mu) per step: sum_j (1 - eta mu)^j
    assert fednova_norm(4, learning_rate=0.1, mu=2.0) == pytest.approx(sum(0.8**j for j in range(4)))


def test_hand_computed_aggregate() -> None:
    # p = (1/4, 3/4), tau = (2, 4): d_1 = (x - y_1)/2 = [0.5, 0], d_2 = (x - y_2)/4 = [0, 1],
    # tau_eff = 1/4 * 2 + 3/4 * 4 = 3.5, x' = x - 3.5 (1/4 d_1 + 3/4 d_2) = [0.5625, -1.625].
    x = {"w": torch.tensor([1.0, 1.0])}
    updates = [update(0, 1, 2, w=torch.tensor([0.0, 1.0])), update(1, 3, 4, w=torch.tensor([1.0, -3.0]))]
    assert torch.allclose(fednova().aggregate(x, updates)["w"], torch.tensor([0.5625, -1.625]))
    # FedAvg would give 1/4 y_1 + 3/4 y_2 = [0.75, -2.0].
    assert torch.allclose(fedavg().aggregate(x, updates)["w"], torch.tensor([0.75, -2.0]))


def test_hand_computed_aggregate_with_momentum() -> None:
    rho = 0.5
    x = {"w": torch.tensor([2.0], dtype=torch.float64)}
    updates = [update(0, 1, 1, w=torch.tensor([1.0], dtype=torch.float64))]
    updates.append(update(1, 1, 3, w=torch.tensor([0.0], dtype=torch.float64)))
    a1, a2 = 1.0, 1.0 + 1.5 + 1.75
    expected = 2.0 - (0.5 * a1 + 0.5 * a2) * (0.5 * 1.0 / a1 + 0.5 * 2.0 / a2)
    merged = fednova(momentum=rho).aggregate(x, updates)["w"]
    assert merged.item() == pytest.approx(expected, rel=1e-12)


def test_equals_fedavg_when_every_device_runs_the_same_steps() -> None:
    generator = torch.Generator().manual_seed(0)
    x = {"w": torch.randn(5, 3, generator=generator), "b": torch.randn(3, generator=generator)}
    updates = [
        update(d, n, 6, w=torch.randn(5, 3, generator=generator), b=torch.randn(3, generator=generator))
        for d, n in [(0, 10), (4, 25), (7, 3)]
    ]
    nova, avg = fednova().aggregate(x, updates), fedavg().aggregate(x, updates)
    for name in x:
        assert torch.allclose(nova[name], avg[name], rtol=0, atol=1e-6), name


def test_integer_tensors_come_from_the_first_update() -> None:
    x = {"w": torch.tensor([1.0]), "count": torch.tensor(3)}
    updates = [update(0, 1, 2, w=torch.tensor([0.0]), count=torch.tensor(5))]
    assert fednova().aggregate(x, updates)["count"].item() == 5


def fixed_point(aggregate: Aggregate, steps: tuple[int, int], lr: float = 0.01, rounds: int = 3000) -> float:
    """Where a server settles on f_A(x) = x^2/2 and f_B(x) = (x - 1)^2/2, equal data, exact local GD."""
    x, optima = 0.0, (0.0, 1.0)
    for _ in range(rounds):
        updates = [
            update(d, 1, tau, w=torch.tensor([e + (1 - lr) ** tau * (x - e)], dtype=torch.float64))
            for d, (tau, e) in enumerate(zip(steps, optima, strict=True))
        ]
        x = aggregate({"w": torch.tensor([x], dtype=torch.float64)}, updates)["w"].item()
    return x


def test_fednova_removes_the_objective_inconsistency_fedavg_has() -> None:
    # The paper's Theorem 1: with tau_B = 10 tau_A, FedAvg minimises the surrogate weighted by p_i tau_i
    # (optimum near 10/11 = 0.91), FedNova the true objective (optimum 0.5).
    steps = (1, 10)
    avg = fixed_point(fedavg().aggregate, steps)
    nova = fixed_point(fednova(learning_rate=0.01).aggregate, steps)
    assert avg > 0.85, "FedAvg drifts toward the device that runs more local steps"
    assert abs(nova - 0.5) < 0.02
    # Equal steps: both find the true optimum.
    assert fixed_point(fedavg().aggregate, (5, 5)) == pytest.approx(0.5, abs=1e-6)
    assert fixed_point(fednova(learning_rate=0.01).aggregate, (5, 5)) == pytest.approx(0.5, abs=1e-6)


def test_a_device_with_more_steps_weighs_less_than_under_fedavg() -> None:
    # One step of g_A from A, ten steps of g_B from B: FedAvg's update is dominated by B, FedNova's
    # weighs both directions equally (p_A = p_B), scaled by tau_eff = 5.5.
    x = {"w": torch.tensor([0.0, 0.0], dtype=torch.float64)}
    updates = [
        update(0, 1, 1, w=torch.tensor([-1.0, 0.0], dtype=torch.float64)),
        update(1, 1, 10, w=torch.tensor([0.0, -10.0], dtype=torch.float64)),
    ]
    avg, nova = fedavg().aggregate(x, updates)["w"], fednova().aggregate(x, updates)["w"]
    assert avg.tolist() == pytest.approx([-0.5, -5.0])
    assert nova.tolist() == pytest.approx([-2.75, -2.75])
