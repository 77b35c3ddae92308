"""feles.evaluation: batched evaluation, test shards and their combination."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from feles.evaluation import Evaluation, combine, evaluate, shard_ranges


def labelled_data(n: int = 1037, classes: int = 5) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(n, 8, generator=generator)
    y = torch.randint(0, classes, (n,), generator=generator)
    torch.manual_seed(3)
    return nn.Linear(8, classes), x, y


@pytest.mark.parametrize(
    ("n", "size", "expected"),
    [
        (10, 4, [(0, 4), (4, 8), (8, 10)]),
        (8, 4, [(0, 4), (4, 8)]),
        (3, 1000, [(0, 3)]),
        (0, 5, []),
    ],
)
def test_shard_ranges_cover_every_example_once(n: int, size: int, expected: list[tuple[int, int]]) -> None:
    assert shard_ranges(n, size) == expected


def test_sharded_evaluation_equals_the_whole_split() -> None:
    model, x, y = labelled_data()
    whole = evaluate(model, x, y)
    shards = [evaluate(model, x[a:b], y[a:b]) for a, b in shard_ranges(len(y), 100)]
    combined = combine(shards)
    assert combined.num_examples == whole.num_examples == 1037
    assert combined.metric == whole.metric  # exact: whole counts of correct examples
    assert combined.loss == pytest.approx(whole.loss, rel=1e-6)


def test_combine_weights_by_examples() -> None:
    combined = combine([Evaluation(1.0, 0.5, 10), Evaluation(4.0, 1.0, 30)])
    assert combined.num_examples == 40
    assert combined.loss == pytest.approx((10 * 1.0 + 30 * 4.0) / 40)
    assert combined.metric == 35 / 40


def test_combine_of_nothing_has_no_loss() -> None:
    combined = combine([])
    assert combined.num_examples == 0 and math.isnan(combined.loss)


def test_a_diverged_shard_makes_the_loss_nan() -> None:
    assert math.isnan(combine([Evaluation(float("nan"), 0.1, 10), Evaluation(0.3, 0.9, 10)]).loss)


def test_batch_size_does_not_change_the_accuracy() -> None:
    model, x, y = labelled_data()
    small, large = evaluate(model, x, y, batch_size=7), evaluate(model, x, y, batch_size=4096)
    assert small.metric == large.metric
    assert small.loss == pytest.approx(large.loss, rel=1e-6)
