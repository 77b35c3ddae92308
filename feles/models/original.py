"""The original FELES's Keras models that FELES had no equivalent of: its CIFAR and EMNIST CNNs and its Shakespeare
LSTM.

Each matches the Keras architecture layer for layer and parameter for parameter, so a config written for the
original (`model_name: cifar10`, `emnist`, `shakespeare`) trains a model of the same size and transfers as many
parameters. (The original's MNIST and Fashion-MNIST model is `mlp_small`, in linear.py.)
"""

from __future__ import annotations

import torch
from torch import nn

from feles.models.registry import MODELS

#: Smallest image side the CNN's three valid 3x3 convolutions and two 2x2 poolings leave a pixel of.
CNN_MIN_SIDE = 18


def _cnn_side(side: int) -> int:
    """The side left after conv3x3 (valid) - pool2 - conv3x3 - pool2 - conv3x3."""
    return ((side - 2) // 2 - 2) // 2 - 2


@MODELS.register("cnn_keras_tutorial")
class KerasTutorialCnn(nn.Module):
    """conv3x3(32)-pool-conv3x3(64)-pool-conv3x3(64)-dense(64)-logits, no padding: TensorFlow's CNN tutorial,
    the original FELES's CIFAR-10/100 model (122,570 parameters on 32x32x3 images with 10 classes)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if len(input_shape) != 3 or min(input_shape[1:]) < CNN_MIN_SIDE:
            raise ValueError(
                f"cnn_keras_tutorial needs images shaped (channels, height, width) of at least "
                f"{CNN_MIN_SIDE}x{CNN_MIN_SIDE}, got {input_shape}"
            )
        channels, height, width = input_shape
        self.conv1 = nn.Conv2d(channels, 32, kernel_size=3)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.hidden = nn.Linear(64 * _cnn_side(height) * _cnn_side(width), 64)
        self.output = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.conv3(x))
        return self.output(torch.relu(self.hidden(x.flatten(1))))


@MODELS.register("cnn_batchnorm")
class BatchNormCnn(nn.Module):
    """conv3x3(32)-batchnorm-conv3x3(32)-batchnorm-dense(128)-logits, no padding or pooling: the original FELES's
    EMNIST model (2,377,118 trainable parameters on 28x28 images with 62 classes; Keras counts 128 more, the
    batch norms' running means and variances, which are buffers here)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        if len(input_shape) != 3 or min(input_shape[1:]) < 5:
            raise ValueError(f"cnn_batchnorm needs images shaped (channels, height, width), got {input_shape}")
        channels, height, width = input_shape
        self.conv1 = nn.Conv2d(channels, 32, kernel_size=3)
        self.norm1 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)  # Keras's epsilon and momentum (0.99 kept)
        self.conv2 = nn.Conv2d(32, 32, kernel_size=3)
        self.norm2 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
        self.hidden = nn.Linear(32 * (height - 4) * (width - 4), 128)
        self.output = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(torch.relu(self.conv1(x)))
        x = self.norm2(torch.relu(self.conv2(x)))
        return self.output(torch.relu(self.hidden(x.flatten(1))))


class BiasInInputLstm(nn.Module):
    """One LSTM layer with a single bias per gate, as Keras has (torch's LSTM has two): the bias is the input
    weights' column of a constant 1 appended to every step's input."""

    def __init__(self, input_size: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size + 1, hidden, bias=False, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones(*x.shape[:-1], 1, dtype=x.dtype, device=x.device)
        states, _ = self.lstm(torch.cat([x, ones], dim=-1))
        return states


@MODELS.register("char_lstm_onehot")
class OneHotCharLstm(nn.Module):
    """One-hot characters, two LSTM layers of 128 units, logits of the next character from the last step: the
    original FELES's Shakespeare model (Keras LSTM(128) x 2 + Dense(vocabulary))."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 128) -> None:
        super().__init__()
        if len(input_shape) != 1:
            raise ValueError(f"char_lstm_onehot needs inputs shaped (seq_len,), got {input_shape}")
        self.vocabulary = num_classes
        self.lstm1 = BiasInInputLstm(num_classes, hidden)
        self.lstm2 = BiasInInputLstm(hidden, hidden)
        self.output = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(x.long(), self.vocabulary).float()
        states = self.lstm2(self.lstm1(onehot))
        return self.output(states[:, -1])
