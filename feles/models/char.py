"""Small character-level recurrent models for next-character prediction (Shakespeare)."""

from __future__ import annotations

import torch
from torch import nn

from feles.models.registry import MODELS


class CharRnn(nn.Module):
    """Embedding, a recurrent layer stack, logits of the next character from the last step's state.

    Inputs are character indices (any dtype) shaped (batch, seq_len); inputs and targets share the
    vocabulary, so its size is `num_classes`.
    """

    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, cell: str, hidden: int, layers: int, embedding: int = 8
    ) -> None:
        super().__init__()
        if len(input_shape) != 1:
            raise ValueError(f"character models need inputs shaped (seq_len,), got {input_shape}")
        self.embedding = nn.Embedding(num_classes, embedding)
        recurrent = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = recurrent(embedding, hidden, num_layers=layers, batch_first=True)
        self.output = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(self.embedding(x.long()))
        return self.output(states[:, -1])


@MODELS.register("char_gru")
def char_gru(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """One GRU layer of 128 units: quick on a CPU thread."""
    return CharRnn(input_shape, num_classes, "gru", hidden=128, layers=1)


@MODELS.register("char_lstm")
def char_lstm(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """LEAF's Shakespeare model: two LSTM layers of 256 units over 8-dimensional embeddings."""
    return CharRnn(input_shape, num_classes, "lstm", hidden=256, layers=2)
