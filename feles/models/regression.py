"""The original FELES's regression model (its Boston housing model): two hidden layers of 64 ReLU units."""

from __future__ import annotations

import math

import torch
from torch import nn

from feles.models.registry import MODELS


@MODELS.register("regression_mlp")
class RegressionPerceptron(nn.Module):
    """Flatten, two hidden layers of 64 ReLU units, `outputs` linear values (one per target; 1 for diabetes)."""

    def __init__(self, input_shape: tuple[int, ...], outputs: int, hidden: int = 64) -> None:
        super().__init__()
        self.hidden1 = nn.Linear(math.prod(input_shape), hidden)
        self.hidden2 = nn.Linear(hidden, hidden)
        self.output = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.hidden1(x.flatten(1)))
        return self.output(torch.relu(self.hidden2(x)))
