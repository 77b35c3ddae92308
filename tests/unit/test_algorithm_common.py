"""All federated algorithms: parameters, aggregation choice, server state round trips, plug-ins.

Also the helpers the per-algorithm test files share: a tiny model, its data and local tasks.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from feles.algorithms import (
    AGGREGATIONS,
    ALGORITHMS,
    ClientAlgorithm,
    DeviceUpdate,
    LocalTask,
    algorithm_params,
    build_client,
    build_server,
)
from feles.algorithms.aggregation import FedAvgAggregation, FedDynAggregation, FedNovaAggregation
from feles.config import AlgorithmsSection
from feles.plugin_params import StrategyParamsError

ALL = ["fedavg", "fedprox", "fednova", "scaffold", "feddyn"]

# --- shared helpers -----------------------------------------------------------------------------------


def toy_data() -> tuple[torch.Tensor, torch.Tensor]:
    """Two overlapping classes in 2-D, 10 examples (not separable, so the loss keeps a gradient)."""
    x = torch.tensor(
        [
            [2.0, 1.0],
            [1.5, 2.0],
            [3.0, 0.5],
            [-0.5, 0.5],
            [1.0, 1.0],
            [-2.0, -1.0],
            [-1.5, -2.0],
            [0.5, -0.5],
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


def make_task(
    seed: int = 0,
    epochs: int = 3,
    batch_size: int = 4,
    lr: float = 0.1,
    extra: Mapping[str, torch.Tensor] | None = None,
    momentum: float = 0.0,
) -> LocalTask:
    model = make_model()
    x, y = toy_data()
    return LocalTask(
        model=model,
        x=x,
        y=y,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum),
        generator=torch.Generator().manual_seed(seed),
        global_weights={name: tensor.detach().clone() for name, tensor in model.state_dict().items()},
        extra=dict(extra or {}),
    )


def weights_of(task: LocalTask) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in task.model.state_dict().items()}


def distance(first: Mapping[str, torch.Tensor], second: Mapping[str, torch.Tensor]) -> float:
    return float(sum(((first[name] - second[name]) ** 2).sum() for name in first) ** 0.5)


def update(
    device: int, num_examples: int, num_steps: int = 1, extra: Mapping[str, torch.Tensor] | None = None, **tensors: Any
) -> DeviceUpdate:
    return DeviceUpdate(device, num_examples, num_steps, 0.0, tensors, dict(extra or {}))


def section(algorithm: str, params: Mapping[str, Any] | None = None, **fields: Any) -> AlgorithmsSection:
    document: dict[str, Any] = {"federated_algorithm": algorithm, "algorithm_params": dict(params or {}), **fields}
    return AlgorithmsSection.model_validate(document)


def local_round(client: ClientAlgorithm, extra: Mapping[str, torch.Tensor], seed: int) -> tuple[LocalTask, Any]:
    task = make_task(seed=seed, extra=extra)
    return task, client.train(task)


# --- registry and parameters --------------------------------------------------------------------------


def test_every_algorithm_of_the_original_feles_is_registered() -> None:
    assert set(ALL) <= set(ALGORITHMS.names())
    assert {"fedavg", "fednova", "feddyn"} <= set(AGGREGATIONS.names())


@pytest.mark.parametrize("name", ALL)
def test_unknown_parameter_is_an_error_naming_the_key(name: str) -> None:
    config = section(name, {"mu_typo": 1.0, "num_devices": 10})
    with pytest.raises(StrategyParamsError, match=r"unknown parameter\(s\) mu_typo") as info:
        build_server(config, num_devices=10)
    assert name in str(info.value)
    with pytest.raises(StrategyParamsError, match="mu_typo"):
        build_client(config)


def test_defaults_fill_missing_parameters() -> None:
    assert algorithm_params(section("fedprox")) == {"mu": 0.01}
    assert algorithm_params(section("feddyn")) == {"alpha": 0.01, "num_devices": None}
    assert algorithm_params(section("scaffold", {"server_learning_rate": 0.5})) == {
        "server_learning_rate": 0.5,
        "num_devices": None,
    }


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("fedprox", {"mu": -1}, "mu must be a number >= 0"),
        ("fedprox", {"mu": "big"}, "mu must be a number >= 0"),
        ("feddyn", {"alpha": 0}, "alpha must be a number > 0"),
        ("scaffold", {"server_learning_rate": True}, "server_learning_rate must be a number > 0"),
    ],
)
def test_invalid_values_are_errors_naming_the_key(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(StrategyParamsError, match=message):
        algorithm_params(section(name, params))


@pytest.mark.parametrize(("name", "aggregation"), [("fedavg", FedAvgAggregation), ("fedprox", FedAvgAggregation)])
def test_default_aggregations(name: str, aggregation: type) -> None:
    assert type(build_server(section(name)).aggregation) is aggregation
    assert type(build_server(section("fednova")).aggregation) is FedNovaAggregation
    assert type(build_server(section("feddyn"), num_devices=5).aggregation) is FedDynAggregation
    assert type(build_server(section("scaffold"), num_devices=5).aggregation) is FedAvgAggregation


def test_fit_aggregation_overrides_the_algorithm_and_brings_its_parameters() -> None:
    # FELES's original way to get FedNova: the fedavg algorithm with the fednova aggregation.
    server = build_server(section("fedavg", fit={"aggregation": "fednova"}))
    assert type(server.aggregation) is FedNovaAggregation
    # The feddyn aggregation reads alpha, so fedavg with it accepts alpha.
    server = build_server(section("fedavg", {"alpha": 0.1}, fit={"aggregation": "feddyn"}), num_devices=3)
    assert type(server.aggregation) is FedDynAggregation
    assert server.aggregation.alpha == 0.1
    with pytest.raises(StrategyParamsError, match="alpha"):
        build_server(section("fedavg", {"alpha": 0.1}))


def test_unknown_aggregation_lists_the_known_ones() -> None:
    with pytest.raises(LookupError, match=r"unknown aggregation strategy 'median'.*fedavg, feddyn, fednova"):
        build_server(section("fedavg", fit={"aggregation": "median"}))


@pytest.mark.parametrize("name", ["scaffold", "feddyn"])
def test_algorithms_that_need_the_number_of_devices_say_so(name: str) -> None:
    with pytest.raises(ValueError, match="needs the number of devices N"):
        build_server(section(name))
    assert build_server(section(name, {"num_devices": 7})) is not None
    with pytest.raises(ValueError, match=r"num_devices = 7 differs from devices\.num = 8"):
        build_server(section(name, {"num_devices": 7}), num_devices=8)


def test_fednova_aggregation_refuses_adam() -> None:
    with pytest.raises(ValueError, match="optimizer 'adam' has no normalising vector"):
        build_server(section("fednova", optimizer="adam"))


# --- server state ---------------------------------------------------------------------------------------


def run_rounds(name: str, rounds: int = 3, devices: tuple[int, ...] = (0, 2, 3)) -> Any:
    """A server of `name` after `rounds` rounds of real local training on the toy task."""
    config = section(name, {"alpha": 0.1} if name == "feddyn" else {})
    server, client = build_server(config, num_devices=5), build_client(config)
    weights = make_task().global_weights
    for round_ in range(rounds):
        updates = []
        for device in devices[round_ % 2 :]:
            task = make_task(seed=10 * round_ + device, extra=server.job_tensors(device))
            task.model.load_state_dict(weights)
            task.global_weights = {name: tensor.clone() for name, tensor in weights.items()}
            outcome = client.train(task)
            updates.append(DeviceUpdate(device, 10, outcome.num_steps, outcome.loss, weights_of(task), outcome.extra))
        weights = server.aggregate(weights, updates)
    return server, client, weights, config


@pytest.mark.parametrize("name", ALL)
def test_server_state_round_trips_and_the_run_continues_identically(name: str) -> None:
    server, client, weights, config = run_rounds(name)
    state = server.state_dict()
    assert all(isinstance(tensor, torch.Tensor) for tensor in state.values())
    if name in ("scaffold", "feddyn"):
        assert state, "stateful algorithms must checkpoint their state"
    restored = build_server(config, num_devices=5)
    restored.load_state_dict({key: tensor.clone() for key, tensor in state.items()})
    assert restored.state_dict().keys() == state.keys()
    for key in state:
        assert torch.equal(restored.state_dict()[key], state[key]), key
    for device in range(5):
        sent, resent = server.job_tensors(device), restored.job_tensors(device)
        assert sent.keys() == resent.keys()
        assert all(torch.equal(sent[key], resent[key]) for key in sent)
    # One more round from both: the same next model and the same state.
    task = make_task(seed=99, extra=server.job_tensors(1))
    task.model.load_state_dict(weights)
    task.global_weights = weights
    outcome = client.train(task)
    next_update = [DeviceUpdate(1, 10, outcome.num_steps, outcome.loss, weights_of(task), outcome.extra)]
    first, second = server.aggregate(weights, next_update), restored.aggregate(weights, next_update)
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert all(torch.equal(server.state_dict()[key], restored.state_dict()[key]) for key in server.state_dict())


@pytest.mark.parametrize("name", ["scaffold", "feddyn"])
def test_foreign_state_is_rejected(name: str) -> None:
    server, *_ = run_rounds(name, rounds=1)
    with pytest.raises(ValueError, match="unexpected server state 'bogus'"):
        server.load_state_dict({"bogus": torch.zeros(1)})


# --- plug-ins -----------------------------------------------------------------------------------------------


def test_a_custom_algorithm_from_an_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "feles_test_median.py").write_text(
        textwrap.dedent(
            """
            import torch
            from feles.algorithms import ClientAlgorithm, FederatedAlgorithm, ServerAlgorithm

            class MedianServer(ServerAlgorithm):
                def aggregate(self, global_weights, updates):
                    return {
                        name: torch.stack([u.tensors[name] for u in updates]).median(dim=0).values
                        for name in updates[0].tensors
                    }

            class Median(FederatedAlgorithm):
                server = MedianServer
                client = ClientAlgorithm
                param_defaults = {"trim": 0}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = section("feles_test_median:Median", {"trim": 1})
    server = build_server(config)
    assert server.params == {"trim": 1}
    merged = server.aggregate({}, [update(d, 1, w=torch.tensor([float(d**2)])) for d in range(3)])
    assert merged["w"].item() == 1.0
    with pytest.raises(StrategyParamsError, match="unknown parameter"):
        build_server(section("feles_test_median:Median", {"other": 1}))
