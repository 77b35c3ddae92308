"""scikit-learn's bundled 8x8 handwritten digits: small, offline, good for quick runs and tests."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from feles.data.bundled import bundled_table
from feles.data.dataset import (
    DATASETS,
    DataRequest,
    DatasetSource,
    FederatedDataset,
    Split,
    fraction_rule,
    read_params,
)
from feles.seeding import numpy_rng

NUM_CLASSES = 10
INPUT_SHAPE = (1, 8, 8)
# The test split is drawn from this seed, never from the run's, so every run tests on the same images.
TEST_SPLIT_SEED = 0


@DATASETS.register("digits")
class Digits(DatasetSource):
    """1,797 8x8 digit images scaled to [0, 1], with a fixed stratified held-out test split."""

    default_model: ClassVar[str] = "mlp"

    def load(self, request: DataRequest) -> FederatedDataset:
        params = read_params("digits", request.params, {"test_fraction": fraction_rule(0.2)})
        pixels, labels = digits_table()
        x = torch.from_numpy((pixels.reshape(-1, 8, 8) / 16.0).astype(np.float32)).unsqueeze(1)
        y = torch.from_numpy(labels.astype(np.int64))
        test = stratified_test_indices(labels, params["test_fraction"])
        train = np.setdiff1d(np.arange(len(y)), test)
        return FederatedDataset(
            train=Split(x=x[train], y=y[train]),
            test=Split(x=x[test], y=y[test]),
            num_classes=NUM_CLASSES,
            input_shape=INPUT_SHAPE,
        )


def digits_table() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 images' 64 pixels (0 to 16, float64) and their labels, as `load_digits(return_X_y=True)`."""
    table = bundled_table("digits.csv.gz", delimiter=",")
    if table is None:
        from sklearn.datasets import load_digits

        return load_digits(return_X_y=True)
    return table[:, :-1], table[:, -1].astype(int)


def stratified_test_indices(labels: np.ndarray, fraction: float) -> np.ndarray:
    """Sorted test indices: round(fraction * class size) of each class (at least 1, never all)."""
    rng = numpy_rng(TEST_SPLIT_SEED, "digits-test-split")
    chosen = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = min(max(1, round(fraction * len(members))), len(members) - 1)
        chosen.append(members[:count])
    return np.sort(np.concatenate(chosen))
