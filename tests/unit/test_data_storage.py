"""uint8 storage of image datasets: batches standardised on demand are the floats of the old whole-split path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from feles.data import DataRequest, Split, Standardization, load_dataset
from feles.data.fashion_mnist import MEAN, STD


def whole_split_floats(pixels: torch.Tensor) -> torch.Tensor:
    """What fashion_mnist stored before: the whole split standardised at load, as float32."""
    return pixels.to(torch.float32).div_(255.0).sub_(MEAN).div_(STD)


def test_batches_standardised_on_demand_equal_the_whole_split_standardised_first() -> None:
    pixels = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2_000, 1, 28, 28), dtype=np.uint8))
    standardize = Standardization(255.0, (MEAN,), (STD,))
    split = Split(x=pixels, y=torch.zeros(2_000, dtype=torch.int64), standardize=standardize)
    whole = whole_split_floats(pixels)
    index = torch.from_numpy(np.random.default_rng(1).permutation(2_000)[:600])
    assert torch.equal(split.inputs(index), whole[index])  # bit for bit, not within a tolerance
    assert torch.equal(split.inputs(slice(1_000, 2_000)), whole[1_000:2_000])
    assert torch.equal(split.inputs(), whole)
    # Every one of the 256 pixel values, so no value anywhere in a real image can differ.
    every_value = torch.arange(256, dtype=torch.uint8).reshape(256, 1, 1, 1)
    every_split = Split(every_value, torch.zeros(256), split.standardize)
    assert torch.equal(every_split.inputs(), whole_split_floats(every_value))


def test_per_channel_standardisation_equals_the_whole_split_standardised_first() -> None:
    pixels = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (50, 3, 4, 4), dtype=np.uint8))
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    split = Split(x=pixels, y=torch.zeros(50, dtype=torch.int64), standardize=Standardization(255.0, mean, std))
    shape = (1, 3, 1, 1)
    whole = pixels.to(torch.float32).div_(255.0)
    whole.sub_(torch.tensor(mean).view(shape)).div_(torch.tensor(std).view(shape))
    assert torch.equal(split.inputs(torch.tensor([7, 3, 49])), whole[[7, 3, 49]])
    assert split.inputs()[:, 2].mean().item() == pytest.approx(((pixels[:, 2].float() / 255 - 0.45) / 0.26).mean())


def test_a_float_split_without_standardization_is_its_own_inputs() -> None:
    x = torch.randn(10, 3)
    split = Split(x=x, y=torch.zeros(10, dtype=torch.int64))
    assert split.inputs() is x
    assert torch.equal(split.inputs(torch.tensor([3, 1])), x[[3, 1]])


def test_fashion_mnist_keeps_uint8_pixels_a_quarter_of_float32() -> None:
    request = DataRequest(0, 0, np.array([10, 10], dtype=np.int64), None, {})
    try:
        data = load_dataset("fashion_mnist", request)
    except RuntimeError as error:  # DatasetUnavailableError
        pytest.skip(str(error))
    assert data.train.x.dtype == torch.uint8 and data.test.x.dtype == torch.uint8
    assert data.train.x.element_size() * data.train.x.nelement() == 60_000 * 28 * 28
    assert torch.equal(data.test.inputs(slice(0, 100)), whole_split_floats(data.test.x[:100]))
