"""feles.orchestrator.planning: a phase's devices, work, failures and costs, as the round model says."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from feles.config import SimulationSpec, parse_spec
from feles.devices import CostModel, DevicePopulation, RoundConditions
from feles.orchestrator.planning import DeviceState, PhasePlan, PhaseStrategies, plan_phase, spend_energy
from feles.protocol import Phase
from feles.strategies.history import DeviceHistory

NUM = 400


def make_spec(**sections: dict[str, Any]) -> SimulationSpec:
    document: dict[str, Any] = {
        "algorithms": {"fit": {"params": {"k": 1.0}}, "eval": {"params": {"k": 1.0}}},
        "devices": {"num": NUM, "p_available": 1.0},
    }
    for name, values in sections.items():
        document.setdefault(name, {}).update(values)
    return parse_spec(document)


def state_of(spec: SimulationSpec, round_: int = 0) -> DeviceState:
    population = DevicePopulation.draw(spec, 0)
    conditions = RoundConditions.draw(spec, population, 0, round_)
    return DeviceState(population, conditions, conditions.energy.copy(), DeviceHistory.empty(spec.devices.num))


def plan(spec: SimulationSpec, state: DeviceState, phase: Phase, round_: int = 0) -> PhasePlan:
    section = spec.algorithms.fit if phase is Phase.FIT else spec.algorithms.eval
    costs = CostModel.of(spec, model_parameters=1000)
    return plan_phase(spec, PhaseStrategies(section), (0, round_, phase), state, costs)


def test_a_device_fails_both_phases_of_a_round_or_neither() -> None:
    spec = make_spec(devices={"p_fail": 0.5})
    state = state_of(spec)
    fit, evaluation = plan(spec, state, Phase.FIT), plan(spec, state, Phase.EVAL)
    assert fit.selected.tolist() == evaluation.selected.tolist() == list(range(NUM))
    # One Bernoulli(0.5) draw per device and round: independent draws per phase would disagree on ~200.
    np.testing.assert_array_equal(fit.random_failures, evaluation.random_failures)
    assert 150 < fit.random_failures.sum() < 250
    later = plan(spec, state_of(spec, round_=1), Phase.FIT, round_=1)
    assert not np.array_equal(fit.random_failures, later.random_failures)


def starving(energy_failures: bool) -> SimulationSpec:
    """Jobs need far more energy than a round gives: 2 epochs of 600 examples on slow devices."""
    return make_spec(
        devices={"p_fail": 0.0, "energy_failures": energy_failures},
        energy={"avail_mean": 10, "avail_var": 0, "pow_comp_s": 100},
        computation={"ips_mean": 10, "ips_var": 0},
    )


def test_energy_failures_fail_the_jobs_a_budget_cannot_pay() -> None:
    spec = starving(energy_failures=True)
    state = state_of(spec)
    fit = plan(spec, state, Phase.FIT)
    assert fit.costs.failed.all()
    spend_energy(fit, state.energy_left)
    np.testing.assert_array_equal(state.energy_left, np.full(NUM, 10.0))


def test_without_energy_failures_jobs_run_and_overdraw_the_budget() -> None:
    spec = starving(energy_failures=False)
    state = state_of(spec)
    fit = plan(spec, state, Phase.FIT)
    assert not fit.costs.failed.any()
    spend_energy(fit, state.energy_left)
    # Energy is still accounted: the budget goes negative by what the jobs needed beyond it.
    np.testing.assert_allclose(state.energy_left, 10.0 - fit.costs.energy)
    assert (state.energy_left < 0).all()
    evaluation = plan(spec, state, Phase.EVAL)
    assert not evaluation.costs.failed.any()
    np.testing.assert_allclose(evaluation.energy_before, state.energy_left)


@pytest.mark.parametrize("energy_failures", [True, False])
def test_random_failures_apply_with_or_without_energy_failures(energy_failures: bool) -> None:
    spec = make_spec(devices={"p_fail": 0.5, "energy_failures": energy_failures})
    fit = plan(spec, state_of(spec), Phase.FIT)
    assert fit.costs.failed[fit.random_failures].all()


def test_an_eval_job_is_one_pass_whatever_epochs_its_update_strategy_gives() -> None:
    # equal_computation_time sizes epochs to fill 100 s: far more than one pass of 600 examples.
    spec = make_spec(devices={"p_fail": 0.0})
    spec.algorithms.eval.update = "equal_computation_time"
    spec.algorithms.eval.update_params = {"computation_time": 100.0}
    spec.algorithms.eval.params.batch_size = 32
    state = state_of(spec)
    fit_section = spec.algorithms.eval.model_copy()  # the same strategy in the fit phase keeps its epochs
    fit = plan_phase(spec, PhaseStrategies(fit_section), (0, 0, Phase.FIT), state, CostModel.of(spec, 1000))
    assert (fit.work.epochs > 1).all()
    evaluation = plan(spec, state, Phase.EVAL)
    assert evaluation.work.epochs.tolist() == [1] * NUM
    # ceil(600 / 32) = 19 iterations: one pass, a partial last batch counting as an iteration.
    assert evaluation.iterations.tolist() == [19] * NUM
    np.testing.assert_allclose(evaluation.costs.computation_time, 19 / state.population.ips)
