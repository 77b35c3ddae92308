"""feles.worker.sgd.SGD is torch.optim.SGD's update without torch.optim: the same weights, bit for bit, and no
torch._dynamo in a worker that trains with it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from feles.worker.sgd import SGD


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4))


def _train(model: nn.Module, optimizer: SGD | torch.optim.SGD, steps: int) -> list[float]:
    generator = torch.Generator().manual_seed(7)
    losses = []
    for _ in range(steps):
        x, y = torch.randn(8, 20, generator=generator), torch.randint(0, 4, (8,), generator=generator)
        for parameter in model.parameters():
            parameter.grad = None
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize(
    "settings",
    [
        {"lr": 0.05},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.01, "weight_decay": 1e-3},
        {"lr": 0.02, "momentum": 0.5, "weight_decay": 0.01},
    ],
)
def test_the_weights_and_losses_are_torch_optim_sgds_bit_for_bit(settings: dict[str, float]) -> None:
    ours, theirs = _model(3), _model(3)
    our_losses = _train(ours, SGD(list(ours.parameters()), **settings), 40)
    their_losses = _train(theirs, torch.optim.SGD(theirs.parameters(), **settings), 40)
    assert our_losses == their_losses
    for mine, reference in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(mine, reference)


def test_a_parameter_without_a_gradient_is_left_alone_and_momentum_lives_in_the_state() -> None:
    layer = nn.Linear(3, 2)
    frozen = layer.bias.detach().clone()
    optimizer = SGD(list(layer.parameters()), lr=0.1, momentum=0.9)
    layer.weight.grad = torch.ones_like(layer.weight)
    optimizer.step()
    assert torch.equal(layer.bias, frozen)
    assert set(optimizer.state) == {layer.weight}
    assert torch.equal(optimizer.state[layer.weight]["momentum_buffer"], torch.ones(2, 3))
    optimizer.param_groups[0]["lr"] = 0.0  # the settings are read at each step, as torch.optim's
    before = layer.weight.detach().clone()
    optimizer.step()
    assert torch.equal(layer.weight, before)


def test_settings_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="lr=-1"):
        SGD(list(nn.Linear(2, 2).parameters()), lr=-1)


def test_a_worker_training_with_sgd_never_imports_torch_dynamo() -> None:
    """torch.optim's first use imports torch._dynamo: about 0.9 s and 71 MiB in every worker."""
    script = """
import sys
import torch
from feles.algorithms.base import ClientAlgorithm, LocalTask
from feles.config import AlgorithmsSection
from feles.worker.local_model import LocalModel
local = LocalModel(torch.nn.Linear(4, 2), AlgorithmsSection(optimizer="sgd", momentum=0.9))
x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
task = LocalTask(local.module, x, y, 1, 4, local.fresh_optimizer(), torch.Generator().manual_seed(0), {})
ClientAlgorithm({}).train(task)
print("torch._dynamo" in sys.modules)
"""
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"
