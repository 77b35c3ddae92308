"""Fully connected models: multinomial logistic regression and McMahan et al.'s 2NN perceptron."""

from __future__ import annotations

import math

import torch
from torch import nn

from feles.models.registry import MODELS


@MODELS.register("logreg")
class LogisticRegression(nn.Module):
    """Flatten, then one linear layer to the class logits."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


@MODELS.register("mlp")
class MultilayerPerceptron(nn.Module):
    """Flatten, two hidden layers of 200 ReLU units, class logits (the 2NN of McMahan et al. 2017)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 200) -> None:
        super().__init__()
        self.hidden1 = nn.Linear(math.prod(input_shape), hidden)
        self.hidden2 = nn.Linear(hidden, hidden)
        self.output = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.hidden1(x.flatten(1)))
        return self.output(torch.relu(self.hidden2(x)))


@MODELS.register("mlp_small")
class SmallPerceptron(nn.Module):
    """Flatten, one hidden layer of 128 ReLU units, class logits: the original FELES's model for (Fashion-)MNIST
    (101,770 parameters on 28x28 images)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.hidden = nn.Linear(math.prod(input_shape), hidden)
        self.output = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(torch.relu(self.hidden(x.flatten(1))))
