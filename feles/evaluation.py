"""Loss and accuracy of a model on labelled data, in fixed-size batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    num_examples: int


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> Evaluation:
    """Mean cross-entropy and accuracy over (x, y); NaN loss when there is no example."""
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        logits = model(x[start : start + batch_size])
        labels = y[start : start + batch_size]
        total_loss += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(dim=1) == labels).sum())
    n = len(y)
    if n == 0:
        return Evaluation(loss=float("nan"), accuracy=0.0, num_examples=0)
    return Evaluation(loss=total_loss / n, accuracy=correct / n, num_examples=n)
