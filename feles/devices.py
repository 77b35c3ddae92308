"""The simulated device population: availability, failures, speed, network, energy and data size.

Every quantity is drawn from seeded generators in a fixed order, so a simulation is reproducible and
independent of the hardware that runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feles.config import SimulationSpec
from feles.seeding import numpy_rng

#: How many times the model crosses the network in a job: down and up for fit, down for eval.
MODEL_TRANSFERS = {"fit": 2.0, "eval": 1.0}


def _uniform(rng: np.random.Generator, mean: float, var: float, size: int) -> np.ndarray:
    return rng.uniform(mean - var, mean + var, size)


@dataclass(frozen=True)
class DevicePopulation:
    """Device properties fixed for a whole repetition: compute speed and local data size."""

    ips: np.ndarray
    data_sizes: np.ndarray

    @property
    def size(self) -> int:
        return len(self.ips)

    @classmethod
    def draw(cls, spec: SimulationSpec, repetition: int) -> DevicePopulation:
        rng = numpy_rng(spec.simulation.seed, "population", repetition)
        n = spec.devices.num
        ips = _uniform(rng, spec.computation.ips_mean, spec.computation.ips_var, n)
        mean, var = spec.data.num_examples_mean, spec.data.num_examples_var
        sizes = rng.integers(mean - var, mean + var, size=n, endpoint=True).astype(np.int64)
        return cls(ips=ips, data_sizes=np.maximum(sizes, 1))


@dataclass(frozen=True)
class RoundConditions:
    """What a round's devices look like: who is available, network speed and energy budget."""

    available: np.ndarray
    net_speed: np.ndarray
    energy: np.ndarray

    @property
    def available_ids(self) -> np.ndarray:
        return np.flatnonzero(self.available)

    @classmethod
    def draw(cls, spec: SimulationSpec, repetition: int, round_: int) -> RoundConditions:
        rng = numpy_rng(spec.simulation.seed, "round-conditions", repetition, round_)
        n = spec.devices.num
        available = rng.random(n) < spec.devices.p_available
        net_speed = _uniform(rng, spec.network.speed_mean, spec.network.speed_var, n)
        energy = np.maximum(_uniform(rng, spec.energy.avail_mean, spec.energy.avail_var, n), 0.0)
        return cls(available=available, net_speed=net_speed, energy=energy)


def draw_failures(spec: SimulationSpec, repetition: int, round_: int, phase: str, devices: np.ndarray) -> np.ndarray:
    """Bernoulli(p_fail) per device for one phase; the draw for device d never depends on the others."""
    rng = numpy_rng(spec.simulation.seed, f"failures-{phase}", repetition, round_)
    draws = rng.random(spec.devices.num)
    return draws[devices] < spec.devices.p_fail


def local_iterations(epochs: np.ndarray, batch_size: np.ndarray, num_examples: np.ndarray) -> np.ndarray:
    """Local iterations of a job: epochs * ceil(num_examples / batch_size)."""
    return epochs * -(-num_examples // batch_size)


@dataclass(frozen=True)
class JobCosts:
    """Simulated time and energy of one phase's jobs, aligned with the devices they belong to."""

    devices: np.ndarray
    computation_time: np.ndarray
    communication_time: np.ndarray
    energy: np.ndarray
    failed: np.ndarray

    @property
    def time(self) -> np.ndarray:
        return self.computation_time + self.communication_time

    def round_time(self) -> float:
        """Simulated duration of the phase: the slowest device that completed it."""
        done = ~self.failed
        return float(self.time[done].max()) if done.any() else 0.0

    def energy_spent(self) -> float:
        """Energy the completed jobs consumed [mWh]."""
        return float(self.energy[~self.failed].sum())


def job_costs(
    spec: SimulationSpec,
    population: DevicePopulation,
    conditions: RoundConditions,
    devices: np.ndarray,
    iterations: np.ndarray,
    model_parameters: int,
    phase: str,
    energy_left: np.ndarray,
    random_failures: np.ndarray,
) -> JobCosts:
    """Time and energy of each job, and which devices fail (random failure or energy exhausted)."""
    computation = iterations / population.ips[devices]
    communication = MODEL_TRANSFERS[phase] * model_parameters / conditions.net_speed[devices]
    energy = spec.energy.pow_comp_s * computation + spec.energy.pow_net_s * communication
    failed = random_failures | (energy > energy_left[devices])
    return JobCosts(devices, computation, communication, energy, failed)
