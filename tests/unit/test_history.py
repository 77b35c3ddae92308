"""DeviceHistory: what the loop records after each fit phase, and its checkpoint round trip."""

from __future__ import annotations

import numpy as np

from feles.devices import JobCosts
from feles.strategies.history import DeviceHistory


def costs(devices: list[int], times: list[float], failed: list[bool]) -> JobCosts:
    n = len(devices)
    return JobCosts(
        devices=np.array(devices, dtype=np.int64),
        computation_time=np.array(times),
        download_time=np.zeros(n),
        upload_time=np.zeros(n),
        energy=np.zeros(n),
        failed=np.array(failed),
    )


def test_record_fit_logs_each_completed_jobs_loss_in_device_order() -> None:
    history = DeviceHistory.empty(5)
    # Results arrive in any order; a diverged job's NaN loss is not logged.
    history.record_fit(0, costs([1, 3, 4], [0.5, 0.7, 0.2], [False, False, True]), {3: 0.8, 1: 1.2})
    history.record_fit(1, costs([0, 2], [0.4, 0.6], [False, False]), {2: float("nan"), 0: 2.0})
    assert history.loss_rounds.tolist() == [0, 0, 1]
    assert history.loss_devices.tolist() == [1, 3, 0]
    assert history.loss_values.tolist() == [1.2, 0.8, 2.0]
    assert history.times_selected.tolist() == [1, 1, 1, 1, 1]
    assert history.round_times.tolist() == [0.7, 0.6]


def test_the_log_reaches_the_device_view_fields() -> None:
    history = DeviceHistory.empty(3)
    history.record_fit(0, costs([2], [0.5], [False]), {2: 0.3})
    fields = history.per_device()
    assert fields["loss_devices"].tolist() == [2]
    assert "round_times" not in fields


def test_restore_round_trip_and_checkpoints_without_the_log() -> None:
    history = DeviceHistory.empty(3)
    history.record_fit(0, costs([0, 1], [0.5, 0.6], [False, False]), {0: 1.0, 1: 0.5})
    again = DeviceHistory.restore(history.arrays())
    assert again.loss_values.tolist() == [1.0, 0.5]
    # A checkpoint written before the loss log existed resumes with an empty log.
    older = {name: array for name, array in history.arrays().items() if not name.startswith("loss_")}
    resumed = DeviceHistory.restore(older)
    assert resumed.loss_rounds.tolist() == []
    assert resumed.times_selected.tolist() == [1, 1, 0]


def test_the_log_grows_past_its_buffer_and_earlier_views_stay_valid() -> None:
    history = DeviceHistory.empty(700)
    everyone = list(range(700))
    job = costs(everyone, [0.1] * 700, [False] * 700)
    history.record_fit(0, job, {device: 1.0 for device in everyone})
    first = history.loss_values
    history.record_fit(1, job, {device: 2.0 for device in everyone})  # 1,400 entries: past 1,024
    history.record_fit(2, job, {device: 3.0 for device in everyone})
    assert first.tolist() == [1.0] * 700
    assert history.loss_rounds.tolist() == [0] * 700 + [1] * 700 + [2] * 700
    assert history.loss_values[::700].tolist() == [1.0, 2.0, 3.0]
    assert history.loss_devices[-1] == 699
