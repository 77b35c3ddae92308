"""FedDyn: dynamic regulariser and server state h (Acar et al. 2021)."""

from __future__ import annotations

import pytest
import torch

from feles.algorithms import ClientAlgorithm, DeviceUpdate, ServerAlgorithm, build_server
from feles.algorithms.feddyn import FedDynClient
from tests.unit.test_algorithm_common import make_task, section, update, weights_of


def server(alpha: float = 0.5, num_devices: int = 4) -> ServerAlgorithm:
    return build_server(section("feddyn", {"alpha": alpha}), num_devices=num_devices)


def grads(*values: list[float]) -> dict[str, torch.Tensor]:
    return {"grad/w": torch.tensor(values[0])}


def test_hand_computed_server_rounds() -> None:
    # alpha = 0.5, m = 4, theta^0 = [1, 2]; devices 1 and 3 return [2, 2] and [0, 4]:
    # h^1 = 0 - 0.5 * (1/4) * ([1, 0] + [-1, 2]) = [0, -0.25]; theta^1 = mean [1, 3] - h^1 / 0.5 = [1, 3.5]
    feddyn = server()
    theta = feddyn.aggregate(
        {"w": torch.tensor([1.0, 2.0])},
        [
            update(1, 5, extra=grads([0.1, 0.2]), w=torch.tensor([2.0, 2.0])),
            update(3, 1, extra=grads([0.3, 0.4]), w=torch.tensor([0.0, 4.0])),
        ],
    )
    assert torch.allclose(theta["w"], torch.tensor([1.0, 3.5]))
    assert torch.allclose(feddyn.state_dict()["aggregation/h/w"], torch.tensor([0.0, -0.25]))
    # Round 2, device 0 returns [1, 5.5]: h^2 = h^1 - 0.125 [0, 2] = [0, -0.5]; theta^2 = [1, 5.5] + [0, 1]
    theta = feddyn.aggregate(theta, [update(0, 1, extra=grads([0.0, 0.0]), w=torch.tensor([1.0, 5.5]))])
    assert torch.allclose(theta["w"], torch.tensor([1.0, 6.5]))
    assert torch.allclose(feddyn.state_dict()["aggregation/h/w"], torch.tensor([0.0, -0.5]))


def test_the_mean_is_unweighted() -> None:
    # FedDyn averages the participating models equally, whatever their data sizes.
    theta = server(alpha=1.0).aggregate(
        {"w": torch.tensor([0.0])},
        [
            update(0, 1, extra=grads([0.0]), w=torch.tensor([2.0])),
            update(1, 99, extra=grads([0.0]), w=torch.tensor([4.0])),
        ],
    )
    # h = -1 * (1/4) * 6 = -1.5; theta = 3 + 1.5
    assert theta["w"].item() == pytest.approx(4.5)


def test_each_devices_gradient_state_travels_with_its_job() -> None:
    feddyn = server()
    assert feddyn.job_tensors(1) == {}
    feddyn.aggregate({"w": torch.zeros(2)}, [update(1, 1, extra=grads([0.1, 0.2]), w=torch.ones(2))])
    assert torch.allclose(feddyn.job_tensors(1)["grad/w"], torch.tensor([0.1, 0.2]))
    assert feddyn.job_tensors(0) == {}
    assert set(feddyn.state_dict()) == {"aggregation/h/w", "grad/1/w"}


def test_client_reports_the_updated_gradient_state() -> None:
    # grad L_i(theta_i^t) = grad L_i(theta_i^{t-1}) - alpha (theta_i^t - theta^{t-1})
    previous = {"grad/weight": torch.tensor([[0.1, 0.0], [0.0, -0.1]]), "grad/bias": torch.tensor([0.05, 0.0])}
    task = make_task(seed=6, extra=previous)
    outcome = FedDynClient({"alpha": 0.3}).train(task)
    for name in ("weight", "bias"):
        drift = weights_of(task)[name] - task.global_weights[name]
        expected = previous[f"grad/{name}"] - 0.3 * drift
        assert torch.allclose(outcome.extra[f"grad/{name}"], expected, atol=1e-6), name


def test_local_objective_value() -> None:
    # -<g, theta> + alpha/2 ||theta - theta^{t-1}||^2 at a shifted model.
    task = make_task(extra={"grad/bias": torch.tensor([1.0, 2.0])})
    with torch.no_grad():
        task.model.bias += torch.tensor([1.0, 0.0])  # bias becomes [1.0, 0.1]
    term = FedDynClient({"alpha": 2.0}).objective_term(task)()
    assert term.item() == pytest.approx(-(1.0 * 1.0 + 2.0 * 0.1) + 1.0 * 1.0)


def test_first_full_batch_step_follows_the_linear_term() -> None:
    # At theta = theta^{t-1} the quadratic's gradient is zero: y = x - eta (grad L - g).
    g = {"weight": torch.tensor([[0.5, 0.0], [0.0, 0.5]]), "bias": torch.tensor([1.0, -1.0])}
    plain = make_task(epochs=1, batch_size=10, lr=0.1)
    dynamic = make_task(epochs=1, batch_size=10, lr=0.1, extra={f"grad/{k}": v for k, v in g.items()})
    ClientAlgorithm({}).train(plain)
    FedDynClient({"alpha": 0.7}).train(dynamic)
    for name in g:
        assert torch.allclose(weights_of(dynamic)[name], weights_of(plain)[name] + 0.1 * g[name], atol=1e-6)


def test_an_update_without_gradient_state_is_an_error() -> None:
    with pytest.raises(ValueError, match="device 2 carries no gradient state"):
        server().aggregate({"w": torch.zeros(1)}, [update(2, 1, w=torch.tensor([1.0]))])


def test_a_devices_linear_term_carries_over_to_its_next_job() -> None:
    # The original FELES reset the term every job (in effect FedProx); here job 2 of device 1 starts from the
    # state job 1 reported, through the server, and so trains differently from a device without history.
    config = section("feddyn", {"alpha": 0.3})
    feddyn = build_server(config, num_devices=4)
    first = make_task(seed=1)
    outcome = FedDynClient({"alpha": 0.3}).train(first)
    theta = feddyn.aggregate(
        first.global_weights,
        [DeviceUpdate(1, 10, outcome.num_steps, outcome.loss, weights_of(first), outcome.extra)],
    )
    carried = feddyn.job_tensors(1)
    assert set(carried) == {"grad/weight", "grad/bias"}
    for name, tensor in outcome.extra.items():
        assert torch.equal(carried[name], tensor) and tensor.abs().sum() > 0, name
    again, fresh = make_task(seed=2, extra=carried), make_task(seed=2, extra=feddyn.job_tensors(3))
    for task in (again, fresh):
        task.model.load_state_dict(theta)
        task.global_weights = {name: tensor.clone() for name, tensor in theta.items()}
        FedDynClient({"alpha": 0.3}).train(task)
    assert not torch.allclose(weights_of(again)["weight"], weights_of(fresh)["weight"])
