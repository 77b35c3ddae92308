"""SCAFFOLD: control variates kept by the orchestrator and sent with each job (Karimireddy et al. 2020)."""

from __future__ import annotations

import pytest
import torch

from feles.algorithms import ClientAlgorithm, ServerAlgorithm, build_server
from feles.algorithms.scaffold import ScaffoldClient
from tests.unit.test_algorithm_common import make_task, section, update, weights_of


def server(num_devices: int = 4, **params: float) -> ServerAlgorithm:
    return build_server(section("scaffold", params), num_devices=num_devices)


def test_zero_variates_train_like_fedavg() -> None:
    plain, controlled = make_task(seed=4), make_task(seed=4)
    out_plain = ClientAlgorithm({}).train(plain)
    out_controlled = ScaffoldClient({}).train(controlled)
    assert out_controlled.loss == out_plain.loss
    for name, tensor in weights_of(plain).items():
        assert torch.equal(weights_of(controlled)[name], tensor), name


def test_option_two_control_update_is_reported() -> None:
    # c = c_i = 0: delta c_i = (x - y_i) / (K eta_l), K = 3 epochs * 3 batches.
    task = make_task(seed=5, lr=0.1)
    outcome = ScaffoldClient({}).train(task)
    assert outcome.num_steps == 9
    y = weights_of(task)
    for name in ("weight", "bias"):
        expected = (task.global_weights[name] - y[name]) / (9 * 0.1)
        assert torch.allclose(outcome.extra[f"delta_c/{name}"], expected, atol=1e-6), name
    assert set(outcome.extra) == {"delta_c/weight", "delta_c/bias"}


def test_local_step_is_corrected_by_c_minus_c_i() -> None:
    # One full-batch step: y = x - eta (grad + c - c_i), i.e. the plain step shifted by -eta (c - c_i).
    c = {"weight": torch.tensor([[1.0, -1.0], [0.5, 0.0]]), "bias": torch.tensor([0.2, -0.4])}
    c_i = {"weight": torch.tensor([[0.5, 0.5], [0.0, 1.0]]), "bias": torch.tensor([0.0, 0.1])}
    extra = {**{f"c/{k}": v for k, v in c.items()}, **{f"ci/{k}": v for k, v in c_i.items()}}
    plain = make_task(epochs=1, batch_size=10, lr=0.1)
    controlled = make_task(epochs=1, batch_size=10, lr=0.1, extra=extra)
    ClientAlgorithm({}).train(plain)
    outcome = ScaffoldClient({}).train(controlled)
    for name in c:
        expected = weights_of(plain)[name] - 0.1 * (c[name] - c_i[name])
        assert torch.allclose(weights_of(controlled)[name], expected, atol=1e-6), name
        # delta c_i = -c + (x - y) / (1 * 0.1)
        change = -c[name] + (controlled.global_weights[name] - weights_of(controlled)[name]) / 0.1
        assert torch.allclose(outcome.extra[f"delta_c/{name}"], change, atol=1e-5), name


def test_hand_computed_server_rounds() -> None:
    scaffold = server(num_devices=4, server_learning_rate=0.5)
    x = {"w": torch.tensor([1.0, 2.0])}
    assert scaffold.job_tensors(0) == {}  # c = c_i = 0 travel as nothing
    updates = [
        update(0, 1, extra={"delta_c/w": torch.tensor([1.0, 1.0])}, w=torch.tensor([0.0, 2.0])),
        update(2, 1, extra={"delta_c/w": torch.tensor([3.0, -1.0])}, w=torch.tensor([2.0, 0.0])),
    ]
    # mean y = [1, 1]; x' = x + 0.5 ([1, 1] - x) = [1, 1.5]
    x = scaffold.aggregate(x, updates)
    assert torch.allclose(x["w"], torch.tensor([1.0, 1.5]))
    # c = 0 + (1/N) sum delta c_i = [4, 0] / 4; c_0 = [1, 1]; c_2 = [3, -1]
    sent = scaffold.job_tensors(0)
    assert torch.allclose(sent["c/w"], torch.tensor([1.0, 0.0]))
    assert torch.allclose(sent["ci/w"], torch.tensor([1.0, 1.0]))
    assert torch.allclose(scaffold.job_tensors(2)["ci/w"], torch.tensor([3.0, -1.0]))
    assert set(scaffold.job_tensors(1)) == {"c/w"}  # device 1 never trained: c_1 = 0
    # Second round: only device 0, delta c_0 = [-1, 0]: c_0 = [0, 1], c = [1, 0] + [-1, 0] / 4
    scaffold.aggregate(x, [update(0, 1, extra={"delta_c/w": torch.tensor([-1.0, 0.0])}, w=torch.tensor([1.0, 1.5]))])
    assert torch.allclose(scaffold.job_tensors(0)["ci/w"], torch.tensor([0.0, 1.0]))
    assert torch.allclose(scaffold.job_tensors(0)["c/w"], torch.tensor([0.75, 0.0]))


def test_server_learning_rate_one_is_the_aggregate() -> None:
    updates = [
        update(0, 1, extra={"delta_c/w": torch.zeros(1)}, w=torch.tensor([2.0])),
        update(1, 3, extra={"delta_c/w": torch.zeros(1)}, w=torch.tensor([6.0])),
    ]
    assert server().aggregate({"w": torch.tensor([0.0])}, updates)["w"].item() == 5.0


def test_state_names_and_contents() -> None:
    scaffold = server(num_devices=2)
    scaffold.aggregate(
        {"w": torch.zeros(1)}, [update(1, 1, extra={"delta_c/w": torch.tensor([2.0])}, w=torch.tensor([1.0]))]
    )
    state = scaffold.state_dict()
    assert set(state) == {"c/w", "ci/1/w"}
    assert state["c/w"].item() == 1.0
    assert state["ci/1/w"].item() == 2.0


def test_an_update_without_variate_change_is_an_error() -> None:
    with pytest.raises(ValueError, match="device 3 carries no control variate change"):
        server().aggregate({"w": torch.zeros(1)}, [update(3, 1, w=torch.tensor([1.0]))])
