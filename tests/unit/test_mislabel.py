"""Label noise: exact counts, always a different class, uniform over the others."""

from __future__ import annotations

import numpy as np
import pytest

from feles.data.mislabel import mislabel


def test_changes_exactly_the_rounded_fraction_and_never_keeps_a_label() -> None:
    labels = np.random.default_rng(1).integers(0, 10, size=1_001)
    noisy = mislabel(labels, 0.3, 10, np.random.default_rng(2))
    changed = noisy != labels
    assert changed.sum() == round(0.3 * 1_001) == 300
    assert noisy.min() >= 0
    assert noisy.max() <= 9
    assert noisy.dtype == labels.dtype


def test_leaves_the_input_untouched() -> None:
    labels = np.arange(10) % 3
    before = labels.copy()
    mislabel(labels, 0.5, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(labels, before)


def test_zero_fraction_is_an_identical_copy() -> None:
    labels = np.arange(50) % 5
    noisy = mislabel(labels, 0.0, 5, np.random.default_rng(0))
    np.testing.assert_array_equal(noisy, labels)
    assert noisy is not labels


def test_new_classes_are_uniform_over_the_other_classes() -> None:
    labels = np.zeros(40_000, dtype=np.int64)
    noisy = mislabel(labels, 0.9, 5, np.random.default_rng(3))
    counts = np.bincount(noisy, minlength=5)
    assert counts[0] == 4_000
    # 36,000 changed labels spread over classes 1..4: about 9,000 each (sd ~82).
    assert np.all(np.abs(counts[1:] - 9_000) < 500)


def test_same_rng_seed_same_noise_and_different_seed_different_noise() -> None:
    labels = np.arange(1_000) % 10
    first = mislabel(labels, 0.2, 10, np.random.default_rng(7))
    again = mislabel(labels, 0.2, 10, np.random.default_rng(7))
    other = mislabel(labels, 0.2, 10, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_fraction_outside_zero_one_is_rejected(fraction: float) -> None:
    with pytest.raises(ValueError, match="mislabelling fraction"):
        mislabel(np.zeros(10, dtype=np.int64), fraction, 10, np.random.default_rng(0))
