"""Planning a phase of a round: who takes part, with what work, at what simulated cost, with which seeds.

Pure functions of the spec, the device state and the strategies: the loop dispatches what they plan.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from feles.config import PhaseSection, SimulationSpec
from feles.devices import CostModel, DevicePopulation, JobCosts, PhaseWork, RoundConditions, draw_failures
from feles.devices import local_iterations as count_local_iterations
from feles.protocol import Phase
from feles.seeding import numpy_rng, torch_seeds
from feles.strategies import SELECTORS, UPDATE_OPTIMIZERS, DeviceView, LocalWork, SelectionContext, UpdateContext
from feles.strategies.history import DeviceHistory


class PhaseStrategies:
    """The selection and update strategies of one phase, built once from its section."""

    def __init__(self, section: PhaseSection) -> None:
        self.section = section
        self.selector = SELECTORS.get(section.selection)(section.selection_params)
        self.update = UPDATE_OPTIMIZERS.get(section.update)(section.update_params)

    def select(self, context: SelectionContext) -> np.ndarray:
        """The selector's devices, sorted; an error when they are not distinct available devices."""
        selected = np.asarray(self.selector.select_devices(context), dtype=np.int64)
        if not np.isin(selected, context.available).all() or len(np.unique(selected)) != len(selected):
            raise RuntimeError(
                f"selection strategy {self.section.selection!r} returned devices that are not distinct "
                "available devices"
            )
        return np.sort(selected)


@dataclass(frozen=True)
class DeviceState:
    """What a phase knows of the devices: fixed properties, the round's draws, energy left and history."""

    population: DevicePopulation
    conditions: RoundConditions
    energy_left: np.ndarray
    history: DeviceHistory


@dataclass(frozen=True)
class PhasePlan:
    """One phase of one round, decided before any job runs.

    `energy_before` is each selected device's energy budget before the phase, `costs.failed` the devices
    that fail before they start (the random draw, or not enough energy), `random_failures` the former.
    """

    repetition: int
    round: int
    phase: Phase
    work: LocalWork
    iterations: np.ndarray
    random_failures: np.ndarray
    costs: JobCosts
    energy_before: np.ndarray
    seeds: np.ndarray

    @property
    def selected(self) -> np.ndarray:
        return self.work.devices


def device_view(spec: SimulationSpec, state: DeviceState, costs: CostModel) -> DeviceView:
    """What selection and update strategies may read about the devices in this phase of a round."""
    return DeviceView(
        ips=state.population.ips,
        data_sizes=state.population.data_sizes,
        net_speed=state.conditions.net_speed,
        energy=state.energy_left,
        model_parameters=costs.model_parameters,
        fit_model_copies=costs.fit_model_copies,
        pow_comp_s=spec.energy.pow_comp_s,
        pow_net_s=spec.energy.pow_net_s,
        **state.history.per_device(),
    )


def plan_phase(
    spec: SimulationSpec,
    strategies: PhaseStrategies,
    when: tuple[int, int, Phase],
    state: DeviceState,
    costs: CostModel,
) -> PhasePlan:
    """Select the phase's devices, give them work, cost it and draw failures and seeds.

    `when` is (repetition, round, phase). Spends nothing: `spend_energy` takes the plan's energy off.
    """
    repetition, round_, phase = when
    seed, params = spec.simulation.seed, strategies.section.params
    view = device_view(spec, state, costs)
    selected = strategies.select(
        SelectionContext(
            repetition=repetition,
            round=round_,
            phase=phase.value,
            k=params.k,
            num_devices=spec.devices.num,
            params=params,
            available=state.conditions.available_ids,
            devices=view,
            rng=numpy_rng(seed, f"select-{phase}", repetition, round_),
            round_times=state.history.round_times,
            seed=seed,
        )
    )
    rng = numpy_rng(seed, f"update-{phase}", repetition, round_)
    work = strategies.update.plan(UpdateContext(repetition, round_, phase.value, selected, params, view, rng))
    if phase is Phase.EVAL:
        work = one_pass(work)
    iterations = count_local_iterations(work.epochs, work.batch_size, work.num_examples)
    random_failures = draw_failures(spec, repetition, round_, selected)
    phase_work = PhaseWork(phase.value, selected, iterations, random_failures)
    return PhasePlan(
        repetition=repetition,
        round=round_,
        phase=phase,
        work=work,
        iterations=iterations,
        random_failures=random_failures,
        costs=costs.job_costs(phase_work, state.population, state.conditions, state.energy_left),
        energy_before=state.energy_left[selected].copy(),
        seeds=torch_seeds(seed, f"job-{phase.value}", (repetition, round_), selected),
    )


def one_pass(work: LocalWork) -> LocalWork:
    """An eval job's work: one pass over its examples, whatever epochs an update strategy gave it.

    Evaluation is one pass over the device's data (as in the original FELES, which ignores eval epochs).
    """
    return replace(work, epochs=np.ones_like(work.epochs))


def spend_energy(plan: PhasePlan, energy_left: np.ndarray) -> None:
    """Take the energy of the plan's jobs off the devices' budgets (every job that starts spends it)."""
    started = ~plan.costs.failed
    energy_left[plan.selected[started]] -= plan.costs.energy[started]
