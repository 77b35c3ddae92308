"""feles.algorithms: FedAvg aggregation, the local training loop and the algorithm registry."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import torch
from torch import nn

from feles.algorithms import (
    ALGORITHMS,
    ClientAlgorithm,
    DeviceUpdate,
    FederatedAlgorithm,
    LocalTask,
    ServerAlgorithm,
    resolve_algorithm,
)
from feles.algorithms.fedavg import FedAvg, FedAvgServer, weighted_average
from feles.registry import Registry, UnknownPluginError


def update(device: int, num_examples: int, **tensors: torch.Tensor) -> DeviceUpdate:
    return DeviceUpdate(device=device, num_examples=num_examples, num_steps=1, loss=0.0, tensors=tensors)


# --- aggregation ------------------------------------------------------------------------------------


def test_fedavg_is_the_example_weighted_mean() -> None:
    updates = [
        update(0, 1, w=torch.tensor([[1.0, 2.0], [3.0, 4.0]]), b=torch.tensor([0.0])),
        update(1, 3, w=torch.tensor([[5.0, 10.0], [-1.0, 0.0]]), b=torch.tensor([4.0])),
    ]
    merged = FedAvgServer({}).aggregate({}, updates)
    # (1 * x0 + 3 * x1) / 4
    assert torch.equal(merged["w"], torch.tensor([[4.0, 8.0], [0.0, 1.0]]))
    assert torch.equal(merged["b"], torch.tensor([3.0]))
    assert set(merged) == {"w", "b"}


def test_fedavg_three_devices() -> None:
    updates = [
        update(2, 2, w=torch.tensor([1.0])),
        update(5, 1, w=torch.tensor([4.0])),
        update(9, 1, w=torch.tensor([8.0])),
    ]
    merged = FedAvgServer({}).aggregate({"w": torch.tensor([100.0])}, updates)
    assert merged["w"].item() == pytest.approx((2 * 1 + 4 + 8) / 4)


def test_fedavg_ignores_the_previous_global_weights() -> None:
    updates = [update(0, 5, w=torch.tensor([2.0, -2.0]))]
    merged = FedAvgServer({}).aggregate({"w": torch.tensor([100.0, 100.0])}, updates)
    assert torch.equal(merged["w"], torch.tensor([2.0, -2.0]))


def test_fedavg_equal_weights_is_the_plain_mean() -> None:
    updates = [update(i, 10, w=torch.tensor([float(i)])) for i in range(4)]
    assert FedAvgServer({}).aggregate({}, updates)["w"].item() == pytest.approx(1.5)


def test_integer_tensors_come_from_the_first_update() -> None:
    updates = [
        update(0, 1, counter=torch.tensor(7, dtype=torch.int64), w=torch.tensor([1.0])),
        update(1, 3, counter=torch.tensor(9, dtype=torch.int64), w=torch.tensor([5.0])),
    ]
    merged = FedAvgServer({}).aggregate({}, updates)
    assert merged["counter"].dtype == torch.int64
    assert merged["counter"].item() == 7
    # A copy, not the update's own tensor.
    merged["counter"] += 1
    assert updates[0].tensors["counter"].item() == 7


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtype_is_preserved(dtype: torch.dtype) -> None:
    updates = [
        update(0, 1, w=torch.tensor([1.0, 2.0], dtype=dtype)),
        update(1, 3, w=torch.tensor([5.0, 6.0], dtype=dtype)),
    ]
    merged = weighted_average(updates, [1, 3])
    assert merged["w"].dtype == dtype
    assert torch.equal(merged["w"], torch.tensor([4.0, 5.0], dtype=dtype))


def test_accumulates_in_double_precision() -> None:
    # Exact mean 1/3; a float32 accumulator loses the 1 next to 2**25 (ulp 4) and ends near 0 or 1.
    updates = [
        update(0, 1, w=torch.tensor([1.0])),
        update(1, 1, w=torch.tensor([2.0**25])),
        update(2, 1, w=torch.tensor([-(2.0**25)])),
    ]
    merged = weighted_average(updates, [1, 1, 1])
    assert merged["w"].dtype == torch.float32
    assert merged["w"].item() == pytest.approx(1 / 3, rel=1e-6)


def loop_weighted_average(updates: Sequence[DeviceUpdate], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """The aggregation as it was written before it was vectorised: one float64 product and sum per update."""
    total = float(sum(weights))
    merged = {}
    for name, first in updates[0].tensors.items():
        accumulator = torch.zeros_like(first, dtype=torch.float64)
        for one, weight in zip(updates, weights, strict=True):
            accumulator += one.tensors[name].to(torch.float64) * (weight / total)
        merged[name] = accumulator.to(first.dtype)
    return merged


@pytest.mark.parametrize("chunk_elements", [None, 1, 700, 5000])
def test_vectorised_average_equals_the_loop_bit_for_bit(
    chunk_elements: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Random updates whose order of addition shows in the last bits: summed in any other order (pairwise, as
    # torch.sum does), thousands of float64 results would differ.
    if chunk_elements is not None:
        monkeypatch.setattr("feles.algorithms.tensors.ORDERED_SUM_ELEMENTS", chunk_elements)
    generator = torch.Generator().manual_seed(5)
    updates = [
        update(
            device,
            1,
            w=torch.randn(10, 64, generator=generator) * 10 ** float(torch.randint(-3, 4, (1,), generator=generator)),
            b=torch.randn(10, generator=generator, dtype=torch.float64),
            steps=torch.tensor(device),
        )
        for device in range(1500)
    ]
    weights = torch.randint(1, 40, (1500,), generator=generator).tolist()
    merged, expected = weighted_average(updates, weights), loop_weighted_average(updates, weights)
    for name in ("w", "b"):
        assert merged[name].dtype == expected[name].dtype
        assert torch.equal(merged[name], expected[name]), name
    assert torch.equal(merged["steps"], torch.tensor(0))
    # The comparison tells orders apart: torch.sum of the same products (pairwise) ends elsewhere in the last bits.
    shares = torch.tensor([weight / sum(weights) for weight in weights], dtype=torch.float64).view(-1, 1)
    products = torch.stack([one.tensors["b"] for one in updates]) * shares
    assert not torch.equal(products.sum(0), expected["b"])


def test_weighted_average_with_explicit_weights() -> None:
    updates = [update(0, 100, w=torch.tensor([0.0])), update(1, 100, w=torch.tensor([10.0]))]
    assert weighted_average(updates, [1.0, 4.0])["w"].item() == pytest.approx(8.0)


def test_fedavg_has_no_server_state() -> None:
    server = FedAvgServer({"anything": 1})
    assert server.state_dict() == {}
    server.load_state_dict({})
    assert server.params == {"anything": 1}


# --- local training ---------------------------------------------------------------------------------


def toy_data() -> tuple[torch.Tensor, torch.Tensor]:
    """Two linearly separable classes in 2-D, 10 examples."""
    x = torch.tensor(
        [
            [2.0, 1.0],
            [1.5, 2.0],
            [3.0, 0.5],
            [2.5, 2.5],
            [1.0, 1.0],
            [-2.0, -1.0],
            [-1.5, -2.0],
            [-3.0, -0.5],
            [-2.5, -2.5],
            [-1.0, -1.0],
        ]
    )
    y = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    return x, y


def make_model() -> nn.Module:
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.1, -0.2], [0.3, 0.05]]))
        model.bias.copy_(torch.tensor([0.0, 0.1]))
    return model


def make_task(seed: int, epochs: int = 3, batch_size: int = 4, model: nn.Module | None = None) -> LocalTask:
    model = model or make_model()
    x, y = toy_data()
    return LocalTask(
        model=model,
        x=x,
        y=y,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        generator=torch.Generator().manual_seed(seed),
        global_weights={name: tensor.detach().clone() for name, tensor in model.state_dict().items()},
    )


def full_loss(model: nn.Module) -> float:
    x, y = toy_data()
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def test_train_reduces_the_loss() -> None:
    task = make_task(seed=0, epochs=5)
    before = full_loss(task.model)
    outcome = ClientAlgorithm({}).train(task)
    after = full_loss(task.model)
    assert after < before * 0.5
    assert outcome.loss > 0


def test_train_counts_steps_epochs_times_ceil_batches() -> None:
    # 10 examples, batch 4: 3 steps per epoch (4, 4, 2).
    assert ClientAlgorithm({}).train(make_task(seed=0, epochs=3, batch_size=4)).num_steps == 9
    assert ClientAlgorithm({}).train(make_task(seed=0, epochs=2, batch_size=10)).num_steps == 2
    assert ClientAlgorithm({}).train(make_task(seed=0, epochs=1, batch_size=64)).num_steps == 1


def test_train_is_deterministic_for_the_same_generator_seed() -> None:
    first, second = make_task(seed=123), make_task(seed=123)
    out1 = ClientAlgorithm({}).train(first)
    out2 = ClientAlgorithm({}).train(second)
    assert out1 == out2
    for name, tensor in first.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[name]), name


def test_train_depends_on_the_generator_seed() -> None:
    first, second = make_task(seed=1), make_task(seed=2)
    ClientAlgorithm({}).train(first)
    ClientAlgorithm({}).train(second)
    assert not torch.equal(first.model.weight, second.model.weight)


def test_train_reports_the_mean_batch_loss() -> None:
    # One full-batch step: the reported loss is the loss before the step.
    task = make_task(seed=0, epochs=1, batch_size=10)
    before = full_loss(task.model)
    outcome = ClientAlgorithm({}).train(task)
    assert outcome.loss == pytest.approx(before, rel=1e-6)
    assert outcome.num_steps == 1


class ShrinkToZero(ClientAlgorithm):
    """A client half with a strong L2 term, to check that `regularizer` enters the objective."""

    calls = 0

    def regularizer(self, task: LocalTask) -> torch.Tensor | None:
        ShrinkToZero.calls += 1
        return self.params["mu"] * sum((p**2).sum() for p in task.model.parameters())


def test_regularizer_enters_the_objective() -> None:
    plain, regularized = make_task(seed=5), make_task(seed=5)
    ClientAlgorithm({}).train(plain)
    ShrinkToZero.calls = 0
    outcome = ShrinkToZero({"mu": 2.0}).train(regularized)
    assert ShrinkToZero.calls == outcome.num_steps == 9
    assert regularized.model.weight.norm() < 0.5 * plain.model.weight.norm()


def test_reported_loss_excludes_the_regularizer() -> None:
    # One full-batch step from the same weights: both report the same data loss, but the
    # regularized step moves the weights differently.
    plain = make_task(seed=0, epochs=1, batch_size=10)
    regularized = make_task(seed=0, epochs=1, batch_size=10)
    out_plain = ClientAlgorithm({}).train(plain)
    out_reg = ShrinkToZero({"mu": 10.0}).train(regularized)
    assert out_reg.loss == pytest.approx(out_plain.loss, rel=1e-6)
    assert not torch.allclose(regularized.model.weight, plain.model.weight)


# --- registry ---------------------------------------------------------------------------------------


class MyServer(ServerAlgorithm):
    def aggregate(
        self, global_weights: Mapping[str, torch.Tensor], updates: Sequence[DeviceUpdate]
    ) -> dict[str, torch.Tensor]:
        return {name: tensor.clone() for name, tensor in global_weights.items()}


class MyAlgo(FederatedAlgorithm):
    server = MyServer
    client = ClientAlgorithm


def test_fedavg_is_registered() -> None:
    assert ALGORITHMS.get("fedavg") is FedAvg
    assert resolve_algorithm("fedavg") is FedAvg
    assert FedAvg.server is FedAvgServer
    assert FedAvg.client is ClientAlgorithm
    assert "fedavg" in ALGORITHMS
    assert "fedavg" in ALGORITHMS.names()


def test_unknown_algorithm_lists_the_known_names() -> None:
    with pytest.raises(UnknownPluginError) as info:
        ALGORITHMS.get("fedsgd")
    message = str(info.value)
    assert "unknown federated algorithm 'fedsgd'" in message
    assert "known: " in message
    for name in ALGORITHMS.names():
        assert name in message
    assert "fedavg" in message
    assert isinstance(info.value, LookupError)


def test_import_path_of_this_module() -> None:
    algorithm = ALGORITHMS.get(f"{__name__}:MyAlgo")
    assert algorithm is MyAlgo
    weights = {"w": torch.tensor([1.0])}
    assert torch.equal(algorithm.server({}).aggregate(weights, [])["w"], weights["w"])


def test_import_path_plugin_from_a_user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "feles_test_user_algo.py").write_text(
        textwrap.dedent(
            """
            from feles.algorithms import ClientAlgorithm, FederatedAlgorithm
            from feles.algorithms.fedavg import FedAvgServer

            class Custom(FederatedAlgorithm):
                server = FedAvgServer
                client = ClientAlgorithm
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    algorithm = resolve_algorithm("feles_test_user_algo:Custom")
    assert algorithm.__name__ == "Custom"
    assert algorithm.server is FedAvgServer
    assert "feles_test_user_algo:Custom" not in ALGORITHMS  # imported, not registered


def test_import_path_of_a_missing_module() -> None:
    with pytest.raises(UnknownPluginError, match="cannot import federated algorithm module 'no_such_module_xyz'"):
        ALGORITHMS.get("no_such_module_xyz:Algo")


def test_import_path_of_a_missing_attribute() -> None:
    with pytest.raises(UnknownPluginError, match=r"module 'feles.algorithms.fedavg' has no federated algorithm 'Nope'"):
        ALGORITHMS.get("feles.algorithms.fedavg:Nope")


def test_registering_a_name_twice_is_an_error() -> None:
    registry: Registry[type] = Registry("thing")
    registry.register("one")(int)
    with pytest.raises(ValueError, match="thing 'one' is already registered"):
        registry.register("one")(float)
    assert registry.get("one") is int
    assert list(registry) == ["one"]
