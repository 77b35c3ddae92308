"""scikit-learn's bundled diabetes data: a small offline regression task, standing in for Boston housing.

The original FELES trained its regression model on Keras's Boston housing data, which scikit-learn removed
(the data encode a racist assumption, see scikit-learn 1.2's release notes); diabetes is of the same kind:
a few hundred examples, about ten numeric features, one continuous target.
"""

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
from feles.data.task import Task
from feles.seeding import numpy_rng

# The test split is drawn from this seed, never from the run's, so every run tests on the same patients.
TEST_SPLIT_SEED = 0


@DATASETS.register("diabetes")
class Diabetes(DatasetSource):
    """442 patients, 10 features standardised with the train split's statistics; the target, a measure of the
    disease's progression a year later (25 to 346), stays in its own units, so that mae and mse read in them."""

    default_model: ClassVar[str] = "regression_mlp"
    task: ClassVar[Task] = "regression"

    def load(self, request: DataRequest) -> FederatedDataset:
        params = read_params("diabetes", request.params, {"test_fraction": fraction_rule(0.2)})
        features, target = diabetes_table()
        test = held_out_indices(len(target), params["test_fraction"])
        train = np.setdiff1d(np.arange(len(target)), test)
        mean, std = features[train].mean(axis=0), features[train].std(axis=0)
        x = torch.from_numpy(((features - mean) / std).astype(np.float32))
        y = torch.from_numpy(target.astype(np.float32))
        return FederatedDataset(
            train=Split(x=x[train], y=y[train]),
            test=Split(x=x[test], y=y[test]),
            num_classes=1,
            input_shape=(features.shape[1],),
        )


def diabetes_table() -> tuple[np.ndarray, np.ndarray]:
    """The 442 patients' 10 raw features and their targets (float64), as `load_diabetes(return_X_y=True,
    scaled=False)`: scikit-learn's scaled features are standardised over all patients, test split included, which
    would leak the test set's statistics into training."""
    features, target = bundled_table("diabetes_data_raw.csv.gz"), bundled_table("diabetes_target.csv.gz")
    if features is None or target is None:
        from sklearn.datasets import load_diabetes

        return load_diabetes(return_X_y=True, scaled=False)
    return features, target


def held_out_indices(num_examples: int, fraction: float) -> np.ndarray:
    """Sorted test indices: round(fraction * num_examples) patients (at least 1, never all), fixed by a seed."""
    count = min(max(1, round(fraction * num_examples)), num_examples - 1)
    rng = numpy_rng(TEST_SPLIT_SEED, "diabetes-test-split")
    return np.sort(rng.permutation(num_examples)[:count])
