"""A small CNN for image datasets: fast on one CPU thread, >80% on Fashion-MNIST within a few rounds."""

from __future__ import annotations

import torch
from torch import nn

from feles.models.registry import MODELS

MIN_SIDE = 4  # two 2x2 poolings must leave at least one pixel


@MODELS.register("cnn")
class SmallCnn(nn.Module):
    """conv5x5(16)-pool-conv5x5(32)-pool-linear(128)-logits; 'same' padding so any image >= 4x4 works."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if len(input_shape) != 3 or min(input_shape[1:]) < MIN_SIDE:
            raise ValueError(
                f"cnn needs images shaped (channels, height, width) of at least {MIN_SIDE}x{MIN_SIDE},"
                f" got {input_shape}"
            )
        channels, height, width = input_shape
        self.conv1 = nn.Conv2d(channels, 16, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5, padding=2)
        self.hidden = nn.Linear(32 * (height // 4) * (width // 4), 128)
        self.output = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.output(torch.relu(self.hidden(x.flatten(1))))
