"""The simulated device population: availability, failures, speed, network, energy and data size.

Every quantity is drawn from seeded generators in a fixed order, so a simulation is reproducible and
independent of the hardware that runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from feles.config import SimulationSpec
from feles.seeding import numpy_rng

#: How many times the model crosses the network in a job: down and up for fit, down for eval (an eval job
#: sends back only its loss and metric). An algorithm's extra model-sized tensors multiply the fit transfers.
MODEL_TRANSFERS = {"fit": 2.0, "eval": 1.0}


#: A device's network spread is speed_var times U(NET_SPREAD_LOW, NET_SPREAD_HIGH), as in the original FELES.
NET_SPREAD_LOW, NET_SPREAD_HIGH = 0.01, 0.99


def _uniform(rng: np.random.Generator, mean: float, var: float, size: int) -> np.ndarray:
    return rng.uniform(mean - var, mean + var, size)


def federation_repetition(spec: SimulationSpec, repetition: int) -> int:
    """The repetition whose seeds draw the federation: device population, data, partitions, initial weights.

    With `simulation.identical_repetitions` every repetition uses repetition 0's, so all of them simulate one
    federation and differ only in the round-level draws (availability, failures, selection, batches).
    """
    return 0 if spec.simulation.identical_repetitions else repetition


@dataclass(frozen=True)
class DevicePopulation:
    """Device properties fixed for a whole repetition: compute speed, local data size and network quality.

    Each device's network speed has its own mean and spread (the original FELES's model): a slow device
    stays slow from round to round, and the round's speed varies around its mean by up to its spread.
    """

    ips: np.ndarray
    data_sizes: np.ndarray
    net_speed_mean: np.ndarray
    net_speed_spread: np.ndarray

    @property
    def size(self) -> int:
        return len(self.ips)

    @classmethod
    def draw(cls, spec: SimulationSpec, repetition: int) -> DevicePopulation:
        """The population of `repetition` (repetition 0's for all with `identical_repetitions`)."""
        rng = numpy_rng(spec.simulation.seed, "population", federation_repetition(spec, repetition))
        n = spec.devices.num
        ips = _uniform(rng, spec.computation.ips_mean, spec.computation.ips_var, n)
        mean, var = spec.data.num_examples_mean, spec.data.num_examples_var
        sizes = rng.integers(mean - var, mean + var, size=n, endpoint=True).astype(np.int64)
        speed_var = spec.network.speed_var
        net_mean = _uniform(rng, spec.network.speed_mean, speed_var, n)
        net_spread = speed_var * rng.uniform(NET_SPREAD_LOW, NET_SPREAD_HIGH, n)
        return cls(ips=ips, data_sizes=np.maximum(sizes, 1), net_speed_mean=net_mean, net_speed_spread=net_spread)

    def draw_net_speed(self, rng: np.random.Generator) -> np.ndarray:
        """One round's speeds: U(max(mean - spread, 0), mean + spread] per device, never 0.

        The interval is open at its low end (high - U[0, 1) * width), so a device whose range reaches 0 gets a
        small but positive speed, never the infinite transfer time of speed 0.
        """
        low = np.maximum(self.net_speed_mean - self.net_speed_spread, 0.0)
        high = self.net_speed_mean + self.net_speed_spread
        return high - rng.random(self.size) * (high - low)


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
    def draw(cls, spec: SimulationSpec, population: DevicePopulation, repetition: int, round_: int) -> RoundConditions:
        rng = numpy_rng(spec.simulation.seed, "round-conditions", repetition, round_)
        n = spec.devices.num
        available = rng.random(n) < spec.devices.p_available
        net_speed = population.draw_net_speed(rng)
        energy = np.maximum(_uniform(rng, spec.energy.avail_mean, spec.energy.avail_var, n), 0.0)
        return cls(available=available, net_speed=net_speed, energy=energy)


def draw_failures(spec: SimulationSpec, repetition: int, round_: int, devices: np.ndarray) -> np.ndarray:
    """Bernoulli(p_fail) per device and round, one draw shared by the fit and eval phases (the original FELES's).

    A device that fails a round fails both phases it is selected for; the draw for device d never depends on
    the other devices.
    """
    rng = numpy_rng(spec.simulation.seed, "failures", repetition, round_)
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
    download_time: np.ndarray
    upload_time: np.ndarray
    energy: np.ndarray
    failed: np.ndarray

    @property
    def communication_time(self) -> np.ndarray:
        return self.download_time + self.upload_time

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

    def with_failed(self, failed: np.ndarray) -> JobCosts:
        """The same costs with another failure mask (devices whose result never came, or was refused)."""
        return replace(self, failed=failed)


@dataclass(frozen=True)
class PhaseWork:
    """A phase's selected devices, their local iterations and their random failure draws, aligned."""

    phase: str
    devices: np.ndarray
    iterations: np.ndarray
    random_failures: np.ndarray


@dataclass(frozen=True)
class CostModel:
    """What a job costs apart from the device it runs on: the energy model's powers and the model's size.

    `fit_model_copies`: model-sized tensors a fit job moves each way (the federated algorithm's; SCAFFOLD 2).
    """

    pow_comp_s: float
    pow_net_s: float
    model_parameters: int
    energy_failures: bool = True
    fit_model_copies: int = 1

    @classmethod
    def of(cls, spec: SimulationSpec, model_parameters: int, fit_model_copies: int = 1) -> CostModel:
        energy = spec.energy
        return cls(
            energy.pow_comp_s, energy.pow_net_s, model_parameters, spec.devices.energy_failures, fit_model_copies
        )

    def job_costs(
        self, work: PhaseWork, population: DevicePopulation, conditions: RoundConditions, energy_left: np.ndarray
    ) -> JobCosts:
        """Time and energy of each job, and which devices fail.

        A device fails on its random draw, and, with `energy_failures`, when the job needs more energy than it
        has left; without, the job runs whatever it costs (the original FELES) and may overdraw the budget.
        """
        devices = work.devices
        computation = work.iterations / population.ips[devices]
        copies = self.fit_model_copies if work.phase == "fit" else 1
        # One transfer each way: the same float operations as MODEL_TRANSFERS * parameters / speed.
        transfer = (copies * self.model_parameters) / conditions.net_speed[devices]
        download = transfer
        upload = (MODEL_TRANSFERS[work.phase] - 1.0) * transfer
        energy = self.pow_comp_s * computation + self.pow_net_s * (download + upload)
        failed = work.random_failures | (self.energy_failures & (energy > energy_left[devices]))
        return JobCosts(devices, computation, download, upload, energy, failed)
