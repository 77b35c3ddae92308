"""feles.devices: the simulated population, round conditions, failures and the time/energy of jobs."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from feles.algorithms import ALGORITHMS
from feles.config import SimulationSpec, parse_spec
from feles.devices import (
    MODEL_TRANSFERS,
    CostModel,
    DevicePopulation,
    JobCosts,
    PhaseWork,
    RoundConditions,
    draw_failures,
    local_iterations,
)

N = 10_000


def make_spec(num: int = N, seed: int = 0, **sections: dict[str, Any]) -> SimulationSpec:
    """A valid spec for `num` devices (k large enough to select one device whatever `num`)."""
    document: dict[str, Any] = {
        "simulation": {"seed": seed},
        "algorithms": {"fit": {"params": {"k": 1.0}}, "eval": {"params": {"k": 1.0}}},
        "devices": {"num": num},
    }
    for name, values in sections.items():
        document.setdefault(name, {}).update(values)
    return parse_spec(document)


# --- DevicePopulation -------------------------------------------------------------------------------


def test_population_ips_within_range_and_mean_close() -> None:
    spec = make_spec(computation={"ips_mean": 100, "ips_var": 50})
    population = DevicePopulation.draw(spec, repetition=0)
    assert population.size == N
    assert population.ips.shape == (N,)
    assert population.ips.min() >= 50
    assert population.ips.max() <= 150
    # Uniform on [50, 150]: sd = 100 / sqrt(12) = 28.9, sd of the mean of 10,000 draws = 0.289.
    # 1.5 is more than 5 standard errors: a correct implementation misses it with p < 1e-6.
    assert abs(population.ips.mean() - 100) < 1.5
    # The draws really spread over the range (not a constant at the mean).
    assert population.ips.min() < 55
    assert population.ips.max() > 145


def test_population_ips_constant_when_var_is_zero() -> None:
    population = DevicePopulation.draw(make_spec(num=50, computation={"ips_mean": 7, "ips_var": 0}), 0)
    assert np.all(population.ips == 7)


def test_population_data_sizes_are_integers_within_range() -> None:
    spec = make_spec(data={"num_examples_mean": 10, "num_examples_var": 2})
    sizes = DevicePopulation.draw(spec, 0).data_sizes
    assert sizes.shape == (N,)
    assert np.issubdtype(sizes.dtype, np.integer)
    assert sizes.min() >= 8
    assert sizes.max() <= 12
    # Both ends of the range are drawn (the upper bound is inclusive): each has probability 1/5.
    assert set(np.unique(sizes).tolist()) == {8, 9, 10, 11, 12}
    # Mean of a discrete uniform on 8..12: 10, sd sqrt(2) -> standard error 0.014; 0.1 is > 7 of them.
    assert abs(sizes.mean() - 10) < 0.1


def test_population_data_sizes_fixed_when_var_is_zero() -> None:
    sizes = DevicePopulation.draw(make_spec(num=30, data={"num_examples_mean": 600}), 0).data_sizes
    assert sizes.tolist() == [600] * 30


def test_population_is_deterministic() -> None:
    spec = make_spec(num=1000, seed=11, data={"num_examples_mean": 600, "num_examples_var": 300})
    first = DevicePopulation.draw(spec, repetition=2)
    second = DevicePopulation.draw(spec, repetition=2)
    np.testing.assert_array_equal(first.ips, second.ips)
    np.testing.assert_array_equal(first.data_sizes, second.data_sizes)


def test_population_depends_on_repetition_and_seed() -> None:
    spec = make_spec(num=1000, seed=11, data={"num_examples_mean": 600, "num_examples_var": 300})
    base = DevicePopulation.draw(spec, repetition=0)
    other_repetition = DevicePopulation.draw(spec, repetition=1)
    other_seed = DevicePopulation.draw(make_spec(num=1000, seed=12, data={"num_examples_var": 300}), 0)
    for other in (other_repetition, other_seed):
        assert not np.array_equal(base.ips, other.ips)
        assert not np.array_equal(base.data_sizes, other.data_sizes)


# --- network: per-device means and spreads ----------------------------------------------------------


def test_population_network_means_and_spreads_within_range() -> None:
    population = DevicePopulation.draw(make_spec(network={"speed_mean": 1000, "speed_var": 400}), 0)
    assert population.net_speed_mean.min() >= 600 and population.net_speed_mean.max() <= 1400
    assert population.net_speed_mean.min() < 610 and population.net_speed_mean.max() > 1390
    # spread = speed_var * U(0.01, 0.99)
    assert population.net_speed_spread.min() >= 4 and population.net_speed_spread.max() <= 396
    assert population.net_speed_spread.min() < 10 and population.net_speed_spread.max() > 390


def test_each_round_speed_lies_in_its_devices_own_range() -> None:
    spec = make_spec(network={"speed_mean": 1000, "speed_var": 400})
    population = DevicePopulation.draw(spec, 0)
    speed = round_conditions(spec, 0, 3).net_speed
    assert (speed > population.net_speed_mean - population.net_speed_spread).all()
    assert (speed <= population.net_speed_mean + population.net_speed_spread).all()


def test_slow_devices_stay_slow() -> None:
    # Device means spread over [600, 1400] (variance 800^2 / 12 = 53,333); a round adds U(-v, v] with
    # E[v^2 / 3] = 400^2 * E[U(0.01, 0.99)^2] / 3 = 17,500: two rounds' speeds correlate at about 0.75
    # (i.i.d. draws per round, the old model, correlate at 0 +- 0.01 over 10,000 devices).
    spec = make_spec(network={"speed_mean": 1000, "speed_var": 400})
    first, second = round_conditions(spec, 0, 0).net_speed, round_conditions(spec, 0, 1).net_speed
    assert np.corrcoef(first, second)[0, 1] > 0.65


class AlmostOne:
    """A generator stand-in whose uniform draws are the largest double below 1."""

    def random(self, size: int) -> np.ndarray:
        return np.full(size, np.nextafter(1.0, 0.0))


def test_a_speed_range_reaching_zero_never_draws_zero() -> None:
    population = DevicePopulation(np.ones(2), np.ones(2, np.int64), np.array([1.0, 5.0]), np.array([3.0, 5.0]))
    speed = population.draw_net_speed(AlmostOne())  # type: ignore[arg-type]
    assert (speed > 0).all()
    assert speed.max() < 1e-12


# --- RoundConditions --------------------------------------------------------------------------------


def round_conditions(spec: SimulationSpec, repetition: int, round_: int) -> RoundConditions:
    return RoundConditions.draw(spec, DevicePopulation.draw(spec, repetition), repetition, round_)


def test_round_availability_fraction_close_to_p_available() -> None:
    spec = make_spec(devices={"p_available": 0.3})
    conditions = round_conditions(spec, 0, 0)
    assert conditions.available.dtype == np.bool_
    assert conditions.available.shape == (N,)
    # Binomial(10,000, 0.3): sd of the fraction sqrt(0.3 * 0.7 / 10,000) = 0.0046; 0.025 is > 5 sd.
    assert abs(conditions.available.mean() - 0.3) < 0.025
    np.testing.assert_array_equal(conditions.available_ids, np.flatnonzero(conditions.available))


def test_round_availability_one_means_every_device() -> None:
    conditions = round_conditions(make_spec(num=200, devices={"p_available": 1.0}), 0, 0)
    assert conditions.available.all()
    assert conditions.available_ids.tolist() == list(range(200))


def test_round_network_and_energy_within_range() -> None:
    spec = make_spec(
        network={"speed_mean": 1000, "speed_var": 400},
        energy={"avail_mean": 50, "avail_var": 50},
    )
    drawn = round_conditions(spec, 0, 0)
    # A device's mean is within [600, 1400] and its spread below 0.99 * 400.
    assert drawn.net_speed.min() > 600 - 396
    assert drawn.net_speed.max() <= 1400 + 396
    # Symmetric around the device means: the mean of 10,000 speeds has sd < 5; 25 is > 5 sd.
    assert abs(drawn.net_speed.mean() - 1000) < 25
    assert drawn.energy.min() >= 0
    assert drawn.energy.max() <= 100


def test_round_conditions_vary_per_round() -> None:
    spec = make_spec(num=1000)
    first = round_conditions(spec, 0, 0)
    second = round_conditions(spec, 0, 1)
    assert not np.array_equal(first.available, second.available)
    assert not np.array_equal(first.net_speed, second.net_speed)
    assert not np.array_equal(first.energy, second.energy)


def test_round_conditions_are_deterministic() -> None:
    spec = make_spec(num=1000, seed=3)
    first = round_conditions(spec, 1, 4)
    second = round_conditions(spec, 1, 4)
    np.testing.assert_array_equal(first.available, second.available)
    np.testing.assert_array_equal(first.net_speed, second.net_speed)
    np.testing.assert_array_equal(first.energy, second.energy)


def test_round_conditions_depend_on_repetition_and_seed() -> None:
    base = round_conditions(make_spec(num=1000, seed=3), 0, 0)
    other_repetition = round_conditions(make_spec(num=1000, seed=3), 1, 0)
    other_seed = round_conditions(make_spec(num=1000, seed=4), 0, 0)
    for other in (other_repetition, other_seed):
        assert not np.array_equal(base.available, other.available)
        assert not np.array_equal(base.net_speed, other.net_speed)


# --- draw_failures ----------------------------------------------------------------------------------


def test_failure_rate_close_to_p_fail() -> None:
    spec = make_spec(devices={"p_fail": 0.2})
    failed = draw_failures(spec, 0, 0, np.arange(N))
    assert failed.dtype == np.bool_
    assert failed.shape == (N,)
    # sd of the fraction sqrt(0.2 * 0.8 / 10,000) = 0.004; 0.02 is 5 sd.
    assert abs(failed.mean() - 0.2) < 0.02


def test_no_failures_when_p_fail_is_zero() -> None:
    spec = make_spec(num=500, devices={"p_fail": 0.0})
    assert not draw_failures(spec, 0, 0, np.arange(500)).any()


def test_failure_of_a_device_does_not_depend_on_the_other_devices() -> None:
    spec = make_spec(num=1000, devices={"p_fail": 0.5})
    everyone = draw_failures(spec, 0, 3, np.arange(1000))
    subset = np.array([999, 5, 17, 400])
    np.testing.assert_array_equal(draw_failures(spec, 0, 3, subset), everyone[subset])
    for device in (0, 17, 999):
        assert draw_failures(spec, 0, 3, np.array([device])).tolist() == [everyone[device]]


def test_failures_are_aligned_with_the_devices_given() -> None:
    spec = make_spec(num=1000, devices={"p_fail": 0.5})
    everyone = draw_failures(spec, 0, 0, np.arange(1000))
    failing = int(np.flatnonzero(everyone)[0])
    surviving = int(np.flatnonzero(~everyone)[0])
    assert draw_failures(spec, 0, 0, np.array([failing, surviving])).tolist() == [True, False]
    assert draw_failures(spec, 0, 0, np.array([surviving, failing])).tolist() == [False, True]


def test_failures_differ_by_round_and_repetition_and_are_deterministic() -> None:
    spec = make_spec(num=1000, devices={"p_fail": 0.5})
    devices = np.arange(1000)
    base = draw_failures(spec, 0, 0, devices)
    np.testing.assert_array_equal(base, draw_failures(spec, 0, 0, devices))
    assert not np.array_equal(base, draw_failures(spec, 0, 1, devices))
    assert not np.array_equal(base, draw_failures(spec, 1, 0, devices))


# --- local_iterations -------------------------------------------------------------------------------


def test_local_iterations_is_epochs_times_ceil_batches() -> None:
    epochs = np.array([1, 2, 3, 1, 5])
    batch = np.array([32, 32, 10, 600, 1])
    examples = np.array([64, 65, 1, 600, 7])
    iterations = local_iterations(epochs, batch, examples)
    assert iterations.tolist() == [2, 6, 3, 1, 35]
    assert np.issubdtype(iterations.dtype, np.integer)
    expected = [e * math.ceil(n / b) for e, b, n in zip(epochs, batch, examples, strict=True)]
    assert iterations.tolist() == expected


def test_local_iterations_batch_larger_than_data_is_one_step_per_epoch() -> None:
    assert local_iterations(np.array([4]), np.array([128]), np.array([3])).tolist() == [4]


# --- job_costs --------------------------------------------------------------------------------------


def cost_fixture(
    pow_comp_s: float = 2.0, pow_net_s: float = 3.0
) -> tuple[SimulationSpec, DevicePopulation, RoundConditions]:
    spec = make_spec(num=4, energy={"pow_comp_s": pow_comp_s, "pow_net_s": pow_net_s})
    population = DevicePopulation(
        ips=np.array([10.0, 20.0, 40.0, 5.0]),
        data_sizes=np.array([10, 20, 30, 40]),
        net_speed_mean=np.array([1000.0, 500.0, 2000.0, 250.0]),
        net_speed_spread=np.zeros(4),
    )
    conditions = RoundConditions(
        available=np.ones(4, dtype=bool),
        net_speed=np.array([1000.0, 500.0, 2000.0, 250.0]),
        energy=np.full(4, 1e9),
    )
    return spec, population, conditions


def job_costs_of(
    devices: list[int],
    iterations: list[int],
    phase: str = "fit",
    energy_left: np.ndarray | None = None,
    failures: list[bool] | None = None,
    pow_comp_s: float = 2.0,
    pow_net_s: float = 3.0,
) -> JobCosts:
    """job_costs on the 4-device fixture with a 1,000-parameter model."""
    spec, population, conditions = cost_fixture(pow_comp_s, pow_net_s)
    work = PhaseWork(
        phase=phase,
        devices=np.array(devices),
        iterations=np.array(iterations),
        random_failures=np.zeros(len(devices), dtype=bool) if failures is None else np.array(failures),
    )
    return CostModel.of(spec, model_parameters=1000).job_costs(
        work, population, conditions, energy_left=np.full(4, 1e9) if energy_left is None else energy_left
    )


def test_job_costs_fit_hand_computed() -> None:
    costs = job_costs_of([0, 2, 3], [20, 80, 10])
    assert costs.devices.tolist() == [0, 2, 3]
    # iterations / ips: 20/10, 80/40, 10/5
    np.testing.assert_allclose(costs.computation_time, [2.0, 2.0, 2.0])
    # fit moves the model down and up: 2 * 1000 / speed
    np.testing.assert_allclose(costs.communication_time, [2.0, 1.0, 8.0])
    np.testing.assert_allclose(costs.time, [4.0, 3.0, 10.0])
    # 2 mWh/s * computation + 3 mWh/s * communication
    np.testing.assert_allclose(costs.energy, [10.0, 7.0, 28.0])
    assert costs.failed.tolist() == [False, False, False]
    assert costs.round_time() == pytest.approx(10.0)
    assert costs.energy_spent() == pytest.approx(45.0)


def test_job_costs_eval_moves_the_model_once() -> None:
    costs = job_costs_of([1, 2], [40, 40], phase="eval")
    np.testing.assert_allclose(costs.computation_time, [2.0, 1.0])
    np.testing.assert_allclose(costs.communication_time, [2.0, 0.5])
    np.testing.assert_allclose(costs.energy, [2 * 2.0 + 3 * 2.0, 2 * 1.0 + 3 * 0.5])
    assert costs.round_time() == pytest.approx(4.0)
    assert MODEL_TRANSFERS == {"fit": 2.0, "eval": 1.0}


def test_energy_exhausted_device_fails() -> None:
    energy_left = np.array([10.0, 1e9, 6.99, 1e9])  # device 0 has exactly enough, device 2 lacks 0.01
    costs = job_costs_of([0, 2], [20, 80], energy_left=energy_left)
    np.testing.assert_allclose(costs.energy, [10.0, 7.0])
    assert costs.failed.tolist() == [False, True]
    assert costs.energy_spent() == pytest.approx(10.0)


def test_without_energy_failures_an_overdrawn_device_still_completes() -> None:
    spec, population, conditions = cost_fixture()
    work = PhaseWork("fit", np.array([0, 2]), np.array([20, 80]), np.array([False, False]))
    energy_left = np.array([10.0, 1e9, 6.99, 1e9])  # device 2 lacks 0.01 mWh
    model = CostModel.of(
        spec.model_copy(update={"devices": spec.devices.model_copy(update={"energy_failures": False})}), 1000
    )
    assert model.energy_failures is False
    costs = model.job_costs(work, population, conditions, energy_left)
    assert costs.failed.tolist() == [False, False]
    np.testing.assert_allclose(costs.energy, [10.0, 7.0])  # still accounted
    assert costs.energy_spent() == pytest.approx(17.0)
    random = model.job_costs(
        replace(work, random_failures=np.array([True, False])), population, conditions, energy_left
    )
    assert random.failed.tolist() == [True, False]


def test_random_failure_fails_even_with_enough_energy() -> None:
    costs = job_costs_of([0, 2, 3], [20, 80, 10], failures=[False, True, False])
    assert costs.failed.tolist() == [False, True, False]
    assert costs.energy_spent() == pytest.approx(10.0 + 28.0)


def test_round_time_is_max_over_devices_that_did_not_fail() -> None:
    # Device 3 is the slowest (10 s) but fails: the round lasts as long as device 0 (4 s).
    costs = job_costs_of([0, 2, 3], [20, 80, 10], failures=[False, False, True])
    assert costs.round_time() == pytest.approx(4.0)
    assert costs.energy_spent() == pytest.approx(17.0)


def test_round_time_and_energy_zero_when_every_device_fails() -> None:
    costs = job_costs_of([0, 1], [20, 20], energy_left=np.zeros(4), failures=[True, False])
    assert costs.failed.tolist() == [True, True]
    assert costs.round_time() == 0.0
    assert costs.energy_spent() == 0.0


def test_energy_uses_the_configured_powers() -> None:
    costs = job_costs_of([0], [20], pow_comp_s=0.0, pow_net_s=10.0)
    np.testing.assert_allclose(costs.energy, [20.0])


def test_job_costs_time_property() -> None:
    costs = JobCosts(
        devices=np.array([0, 1]),
        computation_time=np.array([1.0, 2.0]),
        download_time=np.array([0.25, 0.125]),
        upload_time=np.array([0.25, 0.125]),
        energy=np.array([3.0, 4.0]),
        failed=np.array([False, False]),
    )
    np.testing.assert_allclose(costs.time, [1.5, 2.25])
    assert costs.round_time() == 2.25
    assert costs.energy_spent() == 7.0


def test_an_algorithm_with_two_model_copies_doubles_the_fit_transfers_only() -> None:
    spec, population, conditions = cost_fixture()
    model = CostModel.of(spec, model_parameters=1000, fit_model_copies=2)
    fit = PhaseWork("fit", np.array([0, 1]), np.array([20, 20]), np.zeros(2, dtype=bool))
    costs = model.job_costs(fit, population, conditions, np.full(4, 1e9))
    # 2 * 1000 parameters each way at 1000 and 500 parameters/s
    np.testing.assert_allclose(costs.download_time, [2.0, 4.0])
    np.testing.assert_allclose(costs.upload_time, [2.0, 4.0])
    evaluation = model.job_costs(replace(fit, phase="eval"), population, conditions, np.full(4, 1e9))
    np.testing.assert_allclose(evaluation.download_time, [1.0, 2.0])
    np.testing.assert_allclose(evaluation.upload_time, [0.0, 0.0])


def test_scaffold_moves_two_model_copies_per_fit_job_and_the_others_one() -> None:
    assert ALGORITHMS.get("scaffold").fit_model_copies == 2
    for name in ("fedavg", "fedprox", "fednova", "feddyn"):
        assert ALGORITHMS.get(name).fit_model_copies == 1
