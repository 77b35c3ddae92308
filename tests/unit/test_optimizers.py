"""The local optimizers the spec names, each at its own default learning rate."""

from __future__ import annotations

import pytest
import torch

from feles.config import AlgorithmsSection
from feles.worker.local_model import make_optimizer
from feles.worker.sgd import SGD


@pytest.mark.parametrize(
    ("name", "kind", "lr"),
    [
        ("sgd", SGD, 0.01),  # torch.optim.SGD's update without torch.optim (tests/unit/test_sgd.py)
        ("adam", torch.optim.Adam, 0.001),
        ("rmsprop", torch.optim.RMSprop, 0.001),
        ("adagrad", torch.optim.Adagrad, 0.001),
    ],
)
def test_each_optimizer_has_its_own_default_learning_rate(name: str, kind: type, lr: float) -> None:
    optimizer = make_optimizer([torch.nn.Parameter(torch.zeros(2))], AlgorithmsSection(optimizer=name))
    assert type(optimizer) is kind
    assert optimizer.param_groups[0]["lr"] == lr


def test_a_learning_rate_in_the_spec_wins_over_the_default() -> None:
    config = AlgorithmsSection(optimizer="rmsprop", learning_rate=0.05, momentum=0.5)
    optimizer = make_optimizer([torch.nn.Parameter(torch.zeros(2))], config)
    assert optimizer.param_groups[0]["lr"] == 0.05
    assert optimizer.param_groups[0]["momentum"] == 0.5


def test_an_unknown_optimizer_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="optimizer"):
        AlgorithmsSection(optimizer="nadam")
