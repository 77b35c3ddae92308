"""FedProx: the proximal term mu/2 ||w - w^t||^2 in the local objective (Li et al. 2020)."""

from __future__ import annotations

import pytest
import torch

from feles.algorithms import ClientAlgorithm, build_client, build_server
from feles.algorithms.fedprox import FedProxClient
from tests.unit.test_algorithm_common import distance, make_task, section, update, weights_of


def test_mu_zero_is_fedavg_bit_for_bit() -> None:
    plain, proximal = make_task(seed=3, epochs=4), make_task(seed=3, epochs=4)
    out_plain = ClientAlgorithm({}).train(plain)
    out_prox = FedProxClient({"mu": 0.0}).train(proximal)
    assert out_prox == out_plain
    for name, tensor in weights_of(plain).items():
        assert torch.equal(weights_of(proximal)[name], tensor), name


@pytest.mark.parametrize("mu", [0.1, 1.0, 10.0])
def test_positive_mu_keeps_the_local_model_closer_to_the_global_one(mu: float) -> None:
    plain, proximal = make_task(seed=1, epochs=20), make_task(seed=1, epochs=20)
    ClientAlgorithm({}).train(plain)
    FedProxClient({"mu": mu}).train(proximal)
    drift_plain = distance(weights_of(plain), plain.global_weights)
    drift_prox = distance(weights_of(proximal), proximal.global_weights)
    assert drift_prox < drift_plain


def test_larger_mu_means_less_drift() -> None:
    drifts = []
    for mu in (0.0, 0.5, 5.0):
        task = make_task(seed=2, epochs=20)
        FedProxClient({"mu": mu}).train(task)
        drifts.append(distance(weights_of(task), task.global_weights))
    assert drifts[0] > drifts[1] > drifts[2]


def test_the_term_is_half_mu_times_the_squared_distance_to_the_global_weights() -> None:
    task = make_task()
    with torch.no_grad():
        task.model.weight += torch.tensor([[1.0, 0.0], [0.0, -2.0]])
        task.model.bias += torch.tensor([0.5, 0.0])
    term = FedProxClient({"mu": 0.4}).objective_term(task)()
    # 0.4 / 2 * (1 + 4 + 0.25)
    assert term.item() == pytest.approx(1.05)


def test_two_full_batch_steps_match_hand_computed_gradients() -> None:
    # Step 1 starts at w^t, where the proximal gradient is zero; step 2 adds mu (w_1 - w^t).
    mu, lr = 2.0, 0.1
    task = make_task(epochs=2, batch_size=10, lr=lr)
    reference = make_task(epochs=1, batch_size=10, lr=lr)
    ClientAlgorithm({}).train(reference)  # w_1 = w^t - lr * grad L(w^t)
    w1 = weights_of(reference)
    model = reference.model
    model.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(task.x), task.y)
    loss.backward()
    expected = {
        name: w1[name] - lr * (parameter.grad + mu * (w1[name] - task.global_weights[name]))
        for name, parameter in model.named_parameters()
    }
    FedProxClient({"mu": mu}).train(task)
    for name, tensor in expected.items():
        assert torch.allclose(weights_of(task)[name], tensor, atol=1e-6), name


def test_fedprox_server_is_fedavg() -> None:
    updates = [update(0, 1, w=torch.tensor([1.0])), update(1, 3, w=torch.tensor([5.0]))]
    merged = build_server(section("fedprox", {"mu": 1.0})).aggregate({"w": torch.tensor([0.0])}, updates)
    assert merged["w"].item() == 4.0


def test_build_client_passes_mu() -> None:
    client = build_client(section("fedprox", {"mu": 0.25}))
    assert isinstance(client, FedProxClient)
    assert client.mu == 0.25
    assert build_client(section("fedprox")).mu == 0.01
