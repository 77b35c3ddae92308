"""Selectors that read the history: dynamic_sampling, loss_and_fairness, best_time_expected, the rotations."""

from __future__ import annotations

import numpy as np
import pytest

from feles.plugin_params import StrategyParamsError
from feles.strategies import SELECTORS
from tests.unit.test_selection_common import a_history, population, select

TRAINED = np.array([0, 2, 3, 4, 6])  # the devices of a_history() that completed a fit job


@pytest.mark.parametrize(("round_", "count"), [(0, 4), (1, 3), (3, 2), (6, 2), (7, 1), (50, 1)])
def test_dynamic_sampling_decays_the_number_of_devices(round_: int, count: int) -> None:
    # K_0 = floor(0.5 * 8) = 4; K_t = max(1, floor(4 exp(-0.1 t))): 3.62, 2.96, 2.20, 1.99 ...
    assert len(select("dynamic_sampling", k=0.5, round_=round_)) == count


def test_dynamic_sampling_without_decay_is_random_selection() -> None:
    assert len(select("dynamic_sampling", {"decay": 0}, k=0.5, round_=30)) == 4
    with pytest.raises(StrategyParamsError, match="decay must be a number >= 0"):
        SELECTORS.get("dynamic_sampling")({"decay": -1})


def test_loss_and_fairness_explores_untrained_devices_first() -> None:
    assert select("loss_and_fairness", devices=a_history(), round_=5) == [1, 5, 7]


def test_loss_and_fairness_exploits_large_losses() -> None:
    # t = 6, bonus sqrt(2 ln 6 / n): A = 0.9 + 1.34 (0), 2.0 + 1.34 (2), 0.4 + 1.89 (3), 1.5 + 1.09 (4), 1.1 + 1.34 (6)
    assert select("loss_and_fairness", devices=a_history(), round_=5, available=TRAINED) == [2, 4, 6]


def test_loss_and_fairness_exploration_weight() -> None:
    # sigma = 3: 4.92 (0), 6.02 (2), 6.08 (3), 4.78 (4), 5.12 (6): the rarely trained device 3 gets in.
    picks = select("loss_and_fairness", {"exploration": 3.0}, devices=a_history(), round_=5, available=TRAINED)
    assert picks == [2, 3, 6]


def test_best_time_expected_default_weights() -> None:
    # q = quadratic mean of observed times, else this round's estimate: 0.510, 1.127, 0.412, 0.5, 0.804, 0.802,
    # 0.608, 0.393; mean 0.645. Score 0.5 q + 0.5 n 0.645 with n = [3, 0, 2, 1, 4, 0, 2, 1]:
    # 1.222, 0.564, 0.851, 0.572, 1.691, 0.401, 0.949, 0.519 -> 5, 7, 1.
    assert select("best_time_expected", devices=a_history()) == [1, 5, 7]


def test_best_time_expected_speed_only() -> None:
    # Smallest q: 0.393 (7), 0.412 (2), 0.5 (3).
    params = {"speed": 1.0, "fairness": 0.0}
    assert select("best_time_expected", params, devices=a_history()) == [2, 3, 7]


def test_best_time_expected_stability_term() -> None:
    # Standard deviations 0.1 (0, 2, 6), 0.082 (4), 0 otherwise. q + 5 s: 1.01, 1.127, 0.912, 0.5, 1.212, 0.802,
    # 1.108, 0.393 -> 7, 3, 5.
    params = {"speed": 1.0, "stability": 5.0, "fairness": 0.0}
    assert select("best_time_expected", params, devices=a_history()) == [3, 5, 7]


def test_best_time_expected_without_time_history_uses_estimates() -> None:
    # Never selected, no observed times: the fastest estimated jobs, like best_round_time.
    assert select("best_time_expected", devices=population()) == [2, 4, 7]


def test_best_time_expected_weights_must_not_all_be_zero() -> None:
    with pytest.raises(StrategyParamsError, match="cannot all be 0"):
        SELECTORS.get("best_time_expected")({"speed": 0, "fairness": 0})


def test_budgeted_fairness_rotation_restores_fairness_when_over_budget() -> None:
    # std of [3, 0, 2, 1, 4, 0, 2, 1] = 1.32 > 0.125 * 4: the least selected, 1 and 5, then 3 or 7.
    picks = select("budgeted_fairness_rotation", devices=a_history(), round_=4)
    assert picks[:1] == [1]
    assert 5 in picks
    assert len(set(picks) & {3, 7}) == 1


@pytest.mark.parametrize(
    ("round_", "expected"),
    [
        (12, [2, 3, 7]),  # budget 1.5 >= 1.32, even round: fastest by expected time
        (13, [1, 5, 7]),  # odd round: biggest loss, never-trained first
    ],
)
def test_budgeted_fairness_rotation_alternates_within_budget(round_: int, expected: list[int]) -> None:
    assert select("budgeted_fairness_rotation", devices=a_history(), round_=round_) == expected


def test_budgeted_fairness_rotation_explicit_budget() -> None:
    picks = select("budgeted_fairness_rotation", {"fairness_budget": 2.0}, devices=a_history(), round_=5)
    assert picks == [1, 5, 7]  # std 1.32 within 2.0, odd round: biggest loss, never-trained first
    trained = select(
        "budgeted_fairness_rotation", {"fairness_budget": 2.0}, devices=a_history(), round_=5, available=TRAINED
    )
    assert trained == [2, 4, 6]


def test_budgeted_time_rotation_cycles_loss_and_fairness() -> None:
    # Mean round time 1.0 equals the automatic budget (the first round's time): no fast round.
    times = np.array([1.0, 0.8, 1.2])
    loss = select("budgeted_time_rotation", devices=a_history(), round_=4, round_times=times, available=TRAINED)
    assert loss == [2, 4, 6]
    fair = select("budgeted_time_rotation", devices=a_history(), round_=3, round_times=times, available=TRAINED)
    assert fair == [2, 3, 6]  # least selected among 0, 2, 3, 4, 6: 1 (3), then 2 (2 and 6)


def test_budgeted_time_rotation_selects_the_fastest_when_over_budget() -> None:
    times = np.array([1.0, 1.5])  # mean 1.25 > 1.0
    assert select("budgeted_time_rotation", devices=a_history(), round_=2, round_times=times) == [2, 3, 7]
    relaxed = {"time_budget": 2.0}
    assert select("budgeted_time_rotation", relaxed, devices=a_history(), round_=2, round_times=times) != [2, 3, 7]


def test_budgeted_time_rotation_frequencies() -> None:
    params = {"loss_rounds": 2, "fairness_rounds": 1}
    kinds = []
    for round_ in range(6):
        picks = select("budgeted_time_rotation", params, devices=a_history(), round_=round_, available=TRAINED)
        kinds.append("loss" if picks == [2, 4, 6] else "fair")
    assert kinds == ["loss", "loss", "fair", "loss", "loss", "fair"]


def test_budgeted_time_rotation_without_round_times_never_exceeds_the_budget() -> None:
    assert select("budgeted_time_rotation", devices=a_history(), round_=2, available=TRAINED) == [2, 4, 6]
