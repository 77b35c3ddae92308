"""Per-device estimates a strategy can make from what devices report: local work, times, energy."""

from __future__ import annotations

import numpy as np

from feles.config import PhaseParams
from feles.devices import MODEL_TRANSFERS, local_iterations
from feles.strategies.selection.base import DeviceView, SelectionContext


def planned_examples(params: PhaseParams, data_sizes: np.ndarray) -> np.ndarray:
    """N of each device under the phase's parameters: num_examples capped by its data (all of it if unset)."""
    sizes = np.asarray(data_sizes, dtype=np.int64)
    return sizes if params.num_examples is None else np.minimum(sizes, params.num_examples)


def planned_iterations(params: PhaseParams, data_sizes: np.ndarray) -> np.ndarray:
    """Local iterations E * ceil(N / B) of each device under the phase's parameters."""
    examples = planned_examples(params, data_sizes)
    return local_iterations(np.int64(params.epochs), np.int64(params.batch_size), examples)


def computation_time(context: SelectionContext) -> np.ndarray:
    """Seconds of local computation of every device (indexed by device id): iterations / ips."""
    return planned_iterations(context.params, context.devices.data_sizes) / context.devices.ips


def transferred_parameters(context: SelectionContext) -> float:
    """Model parameters a job moves over the network: down and up for fit (SCAFFOLD's control variates too),
    down for eval."""
    copies = context.devices.fit_model_copies if context.phase == "fit" else 1
    return MODEL_TRANSFERS[context.phase] * copies * context.devices.model_parameters


def communication_time(context: SelectionContext) -> np.ndarray:
    """Seconds of communication of every device at this round's network speed."""
    return transferred_parameters(context) / context.devices.net_speed


def round_time(context: SelectionContext) -> np.ndarray:
    """Estimated job time of every device this round: computation + communication, from reported resources."""
    return computation_time(context) + communication_time(context)


def observed_times(view: DeviceView) -> tuple[np.ndarray, np.ndarray]:
    """Quadratic mean and standard deviation of each device's past fit times; NaN where none was observed."""
    completed = view.times_completed.astype(np.float64)
    if view.time_sum is None or view.time_sq_sum is None:
        nothing = np.full(len(completed), np.nan)
        return nothing, nothing.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(completed > 0, view.time_sum / completed, np.nan)
        mean_square = np.where(completed > 0, view.time_sq_sum / completed, np.nan)
    variance = np.maximum(mean_square - mean**2, 0.0)  # rounding can make it slightly negative
    return np.sqrt(mean_square), np.sqrt(variance)


def expected_time(context: SelectionContext) -> np.ndarray:
    """Each device's expected job time: the quadratic mean of its observed times, else this round's estimate."""
    observed, _ = observed_times(context.devices)
    return np.where(np.isnan(observed), round_time(context), observed)
