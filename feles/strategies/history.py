"""A repetition's memory of the devices' fit phases: what history-based strategies read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from feles.devices import JobCosts


@dataclass
class DeviceHistory:
    """Memory across a repetition's rounds, checkpointed with the model; the loop writes it, strategies read it.

    Per device (indexed by id): fit phases selected and failed, last round selected (-1 = never),
    last local training loss (NaN = never), and the sum and sum of squares of the simulated time of
    its completed fit jobs. Per round: the fit phase's simulated time, in round order. The loss log:
    one entry (round, device, local loss) per completed fit job with a finite loss, in round then device
    order, for strategies that weigh a device's past losses (ucb_cs's discounted mean).
    """

    times_selected: np.ndarray
    times_failed: np.ndarray
    last_selected_round: np.ndarray
    last_loss: np.ndarray
    time_sum: np.ndarray
    time_sq_sum: np.ndarray
    round_times: np.ndarray
    loss_rounds: np.ndarray
    loss_devices: np.ndarray
    loss_values: np.ndarray

    @classmethod
    def empty(cls, num_devices: int) -> DeviceHistory:
        return cls(
            times_selected=np.zeros(num_devices, dtype=np.int64),
            times_failed=np.zeros(num_devices, dtype=np.int64),
            last_selected_round=np.full(num_devices, -1, dtype=np.int64),
            last_loss=np.full(num_devices, np.nan),
            time_sum=np.zeros(num_devices),
            time_sq_sum=np.zeros(num_devices),
            round_times=np.zeros(0),
            loss_rounds=np.zeros(0, dtype=np.int64),
            loss_devices=np.zeros(0, dtype=np.int64),
            loss_values=np.zeros(0),
        )

    @classmethod
    def restore(cls, arrays: Mapping[str, np.ndarray]) -> DeviceHistory:
        """A history from what `arrays` returned (a checkpoint's copy); a field it lacks starts empty."""
        restored = {name: np.array(array, copy=True) for name, array in arrays.items()}
        # A checkpoint written before the loss log existed resumes with an empty log.
        missing = cls.empty(len(restored["times_selected"])).arrays()
        return cls(**{**missing, **restored})

    def arrays(self) -> dict[str, np.ndarray]:
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def per_device(self) -> dict[str, Any]:
        """What a DeviceView reads: the arrays indexed by device id, and the loss log (not the per-round times)."""
        return {name: array for name, array in self.arrays().items() if name != "round_times"}

    def record_fit(self, round_: int, costs: JobCosts, losses: Mapping[int, float]) -> None:
        """Account for a fit phase: `costs.failed` already includes devices whose result never came."""
        selected, failed = costs.devices, costs.failed
        self.times_selected[selected] += 1
        self.last_selected_round[selected] = round_
        self.times_failed[selected[failed]] += 1
        completed, times = selected[~failed], costs.time[~failed]
        self.time_sum[completed] += times
        self.time_sq_sum[completed] += times**2
        self.round_times = np.append(self.round_times, costs.round_time())
        for device, loss in losses.items():
            self.last_loss[device] = loss
        self._log_losses(round_, losses)

    def _log_losses(self, round_: int, losses: Mapping[int, float]) -> None:
        """Append the round's finite losses, by device: results arrive in any order, the log must not."""
        devices = np.fromiter(losses.keys(), dtype=np.int64, count=len(losses))
        values = np.fromiter(losses.values(), dtype=np.float64, count=len(losses))
        order = np.argsort(devices, kind="stable")
        finite = np.isfinite(values[order])
        self._append_log(np.full(int(finite.sum()), round_, np.int64), devices[order][finite], values[order][finite])

    def _append_log(self, rounds: np.ndarray, devices: np.ndarray, values: np.ndarray) -> None:
        # The log's fields are views of buffers that double when full: appending a round costs its own
        # entries, not a copy of the whole log (10,000 jobs a round make 500,000 entries in 50 rounds).
        size, added = len(self.loss_values), len(values)
        buffers = getattr(self, "_log_buffers", None)
        if buffers is None or size + added > len(buffers[0]):
            capacity = max(2 * (size + added), 1024)
            current = (self.loss_rounds, self.loss_devices, self.loss_values)
            buffers = tuple(np.empty(capacity, dtype=array.dtype) for array in current)
            for buffer, array in zip(buffers, current, strict=True):
                buffer[:size] = array
            self._log_buffers = buffers
        for buffer, array in zip(buffers, (rounds, devices, values), strict=True):
            buffer[size : size + added] = array
        self.loss_rounds, self.loss_devices, self.loss_values = (buffer[: size + added] for buffer in buffers)
