"""Synthetic(alpha, beta) of FedProx (Li et al. 2020): each device has its own model and input mean."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from feles.data.dataset import (
    DATASETS,
    DataRequest,
    DatasetSource,
    FederatedDataset,
    Split,
    consecutive_ranges,
    fraction_rule,
    integer_rule,
    non_negative_rule,
    read_params,
)
from feles.seeding import numpy_rng

PARAM_RULES = {
    "alpha": non_negative_rule(1.0),
    "beta": non_negative_rule(1.0),
    "dimension": integer_rule(60, minimum=1),
    "num_classes": integer_rule(10, minimum=2),
    "test_fraction": fraction_rule(0.2),
}


@dataclass(frozen=True)
class SyntheticShape:
    """The sizes of the generative model: alpha, beta are standard deviations as in FedProx's code."""

    alpha: float
    beta: float
    dimension: int
    num_classes: int


@DATASETS.register("synthetic")
class Synthetic(DatasetSource):
    """Device k: u_k~N(0,alpha), W_k,b_k~N(u_k,1), B_k~N(0,beta), v_k~N(B_k,1), x~N(v_k,Sigma).

    Labels are y = argmax(W_k x + b_k); device k's train examples are its natural partition.
    """

    default_model: ClassVar[str] = "logreg"

    def load(self, request: DataRequest) -> FederatedDataset:
        params = read_params("synthetic", request.params, PARAM_RULES)
        shape = SyntheticShape(params["alpha"], params["beta"], params["dimension"], params["num_classes"])
        train_sizes = np.asarray(request.data_sizes, dtype=np.int64)
        if train_sizes.ndim != 1 or (train_sizes < 0).any():
            raise ValueError(f"data_sizes must be a 1-D array of non-negative counts, got {train_sizes!r}")
        # At least one test example per device, so every device is represented in the global test split.
        test_sizes = np.maximum(1, np.floor(params["test_fraction"] * train_sizes + 0.5)).astype(np.int64)
        rng = numpy_rng(request.seed, "synthetic", request.repetition)
        train, test = generate(shape, train_sizes, test_sizes, rng)
        return FederatedDataset(
            train=train,
            test=test,
            num_classes=shape.num_classes,
            input_shape=(shape.dimension,),
            natural_partitions=consecutive_ranges(train_sizes),
            natural_test_partitions=consecutive_ranges(test_sizes),
        )


def generate(
    shape: SyntheticShape, train_sizes: np.ndarray, test_sizes: np.ndarray, rng: np.random.Generator
) -> tuple[Split, Split]:
    """Train examples concatenated device by device, and the pooled test examples, in one fixed draw order."""
    d, c = shape.dimension, shape.num_classes
    # Sigma_jj = j^-1.2, so the noise's standard deviation is j^-0.6.
    noise_std = np.arange(1, d + 1, dtype=np.float64) ** -0.6
    train_x, train_y = np.empty((train_sizes.sum(), d), np.float32), np.empty(train_sizes.sum(), np.int64)
    test_x, test_y = np.empty((test_sizes.sum(), d), np.float32), np.empty(test_sizes.sum(), np.int64)
    train_at = test_at = 0
    for n_train, n_test in zip(train_sizes.tolist(), test_sizes.tolist(), strict=True):
        # One draw for the device's model and mean, one for its examples: fast for 100k devices.
        z = rng.standard_normal(2 + c * d + c + d)
        u, b_mean = shape.alpha * z[0], shape.beta * z[1]
        weights = u + z[2 : 2 + c * d].reshape(c, d)
        bias = u + z[2 + c * d : 2 + c * d + c]
        mean = b_mean + z[2 + c * d + c :]
        x = mean + noise_std * rng.standard_normal((n_train + n_test, d))
        y = np.argmax(x @ weights.T + bias, axis=1)
        train_rows, test_rows = slice(train_at, train_at + n_train), slice(test_at, test_at + n_test)
        train_x[train_rows], train_y[train_rows] = x[:n_train], y[:n_train]
        test_x[test_rows], test_y[test_rows] = x[n_train:], y[n_train:]
        train_at, test_at = train_rows.stop, test_rows.stop
    return (
        Split(x=torch.from_numpy(train_x), y=torch.from_numpy(train_y)),
        Split(x=torch.from_numpy(test_x), y=torch.from_numpy(test_y)),
    )
