"""Per-device figures of one repetition: availability, selections, failures, energy, and the population's traits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from feles.analysis.columns import count_by_device, equals, locate, of_phase, values
from feles.analysis.device_records import DeviceRecords


def availability_counts(availability: pa.Table, devices: np.ndarray) -> np.ndarray:
    """Rounds each device of `devices` (sorted ids) was available in, from one repetition's availability table."""
    available = pc.list_flatten(availability.column("available_devices")).to_numpy()
    return count_by_device(devices, available).astype(np.int64)


def label_matrix(population: pa.Table, devices: np.ndarray) -> np.ndarray:
    """(devices, classes) examples per class of each device of `devices`; zeros for a device the table lacks."""
    ids = values(population, "device")
    counts = population.column("label_counts").to_pylist()
    classes = max((len(row) for row in counts), default=0)
    matrix = np.zeros((len(devices), classes), dtype=np.int64)
    position, known = locate(devices, ids)
    for row in np.flatnonzero(known):
        matrix[position[row], : len(counts[row])] = counts[row]
    return matrix


def trait(population: pa.Table, devices: np.ndarray, column: str) -> np.ndarray:
    """A population column aligned with `devices` (NaN for a device the table lacks)."""
    result = np.full(len(devices), np.nan)
    position, known = locate(devices, values(population, "device"))
    result[position[known]] = values(population, column)[known]
    return result


@dataclass(frozen=True)
class DeviceStats:
    """Per device (aligned with `devices`, sorted ids) of one repetition; energy in mWh, net speed in parameters/s."""

    devices: np.ndarray
    rounds_available: np.ndarray
    fit_selected: np.ndarray
    eval_selected: np.ndarray
    failed: np.ndarray
    energy: np.ndarray
    data_size: np.ndarray
    ips: np.ndarray
    net_speed: np.ndarray
    label_counts: np.ndarray


def device_stats(data: DeviceRecords, repetition: int) -> DeviceStats:
    """The per-device figures of one repetition; energy is what completed jobs spent (fit and eval)."""
    one = data.of_repetition(repetition)
    devices = data.devices(repetition)
    records = one.records
    completed = records.filter(equals(records, "failed", False))
    return DeviceStats(
        devices=devices,
        rounds_available=availability_counts(one.availability, devices),
        fit_selected=count_by_device(devices, values(of_phase(records, "fit"), "device")).astype(np.int64),
        eval_selected=count_by_device(devices, values(of_phase(records, "eval"), "device")).astype(np.int64),
        failed=count_by_device(devices, values(records, "device")[equals(records, "failed", True)]).astype(np.int64),
        energy=count_by_device(devices, values(completed, "device"), values(completed, "energy")),
        data_size=trait(one.population, devices, "data_size"),
        ips=trait(one.population, devices, "ips"),
        net_speed=trait(one.population, devices, "net_speed_mean"),
        label_counts=label_matrix(one.population, devices),
    )
