"""feles.seeding: derived random streams, and the vectorised job seeds that must equal the scalar ones."""

from __future__ import annotations

import numpy as np
import pytest

from feles.seeding import numpy_rng, torch_seed, torch_seeds


def test_streams_differ_by_purpose_and_key_and_repeat_exactly() -> None:
    draw = numpy_rng(7, "availability", 0, 3).random(4)
    assert (numpy_rng(7, "availability", 0, 3).random(4) == draw).all()
    assert not (numpy_rng(7, "availability", 0, 4).random(4) == draw).any()
    assert not (numpy_rng(7, "energy", 0, 3).random(4) == draw).any()
    assert torch_seed(7, "job-fit", 0, 3, 1) != torch_seed(7, "job-fit", 0, 3, 2)
    assert 0 <= torch_seed(2**32 - 1, "job-fit", 9) < 2**63


@pytest.mark.parametrize("keys", [(), (3,), (0, 7), (2, 5, 9), (1, 2, 3, 4)])
@pytest.mark.parametrize("seed", [0, 42, 2**32 - 1])
def test_torch_seeds_equal_torch_seed_for_every_key(seed: int, keys: tuple[int, ...]) -> None:
    last = np.random.default_rng(seed + len(keys)).integers(0, 2**32, 300)
    last[:3] = [0, 1, 2**32 - 1]
    expected = [torch_seed(seed, "job-eval", *keys, int(key)) for key in last]
    assert torch_seeds(seed, "job-eval", keys, last).tolist() == expected


def test_torch_seeds_of_no_device_and_of_one() -> None:
    assert torch_seeds(1, "job-fit", (0, 0), np.array([], dtype=np.int64)).tolist() == []
    assert torch_seeds(1, "job-fit", (0, 0), np.array(5)).tolist() == [torch_seed(1, "job-fit", 0, 0, 5)]


@pytest.mark.parametrize(("keys", "last"), [((2**32,), [1]), ((0,), [-1]), ((0,), [2**32])])
def test_torch_seeds_refuse_keys_beyond_32_bits(keys: tuple[int, ...], last: list[int]) -> None:
    with pytest.raises(ValueError, match="below 2\\*\\*32"):
        torch_seeds(0, "job-fit", keys, np.array(last))
