"""Selectors that read the history: dynamic_sampling, loss_and_fairness, best_time_expected, the rotations."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from feles.plugin_params import StrategyParamsError
from feles.seeding import numpy_rng
from feles.strategies import SELECTORS
from tests.unit.test_selection_common import a_history, context, select

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


def test_best_time_expected_default_weights_are_the_originals() -> None:
    # q = quadratic mean of observed times, 0 if none: 0.510, 0, 0.412, 0.5, 0.804, 0, 0.608, 0 (mean over the
    # five observed: 0.567); s = 0.1, 0, 0.1, 0, 0.082, 0, 0.1, 0; n = [3, 0, 2, 1, 4, 0, 2, 1].
    # Score 0.34 q + 0.33 s + 0.33 n 0.567:
    expected = [0.7676, 0.0, 0.5474, 0.3571, 1.0487, 0.0, 0.6140, 0.1871]
    selector = SELECTORS.get("best_time_expected")({})
    scores = selector.scores(context(devices=a_history(), round_=5))
    assert np.allclose(scores, expected, atol=1e-3)
    assert select("best_time_expected", devices=a_history(), round_=5, k=0.75) == [1, 2, 3, 5, 6, 7]


def test_best_time_expected_never_selected_devices_score_time_0() -> None:
    # Speed only: 1, 5 and 7 have no observed time and score 0 (as in the original), ahead of 2 (0.412 s),
    # although their estimated jobs (1.127, 0.802, 0.393 s) are not the fastest.
    params = {"speed": 1.0, "stability": 0.0, "fairness": 0.0}
    assert select("best_time_expected", params, devices=a_history(), round_=5) == [1, 5, 7]
    assert select("best_time_expected", params, devices=a_history(), round_=5, k=0.5) == [1, 2, 5, 7]


def test_best_time_expected_stability_term() -> None:
    # Standard deviations 0.1 (0, 2, 6), 0.082 (4), 0 otherwise. With q + 5 s the trained devices score
    # 1.01 (0), 0.912 (2), 0.5 (3), 1.212 (4), 1.108 (6): after 1, 5, 7, device 3.
    params = {"speed": 1.0, "stability": 5.0, "fairness": 0.0}
    assert select("best_time_expected", params, devices=a_history(), round_=5, k=0.5) == [1, 3, 5, 7]


def test_best_time_expected_weights_must_not_all_be_zero() -> None:
    with pytest.raises(StrategyParamsError, match="cannot all be 0"):
        SELECTORS.get("best_time_expected")({"speed": 0, "stability": 0, "fairness": 0})


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


# Every device trained, so that biggest-loss picks (2, 4, 6) and least-selected picks (1 and 5 first) differ.
TRAINED_ALL = {"last_loss": np.array([0.9, 0.5, 2.0, 0.4, 1.5, 0.3, 1.1, 0.8])}


def rotation(round_: int, params: dict | None = None, **fields: object) -> list[int]:
    devices = replace(a_history(), **TRAINED_ALL)
    return select("budgeted_time_rotation", params, devices=devices, round_=round_, **fields)


def test_budgeted_time_rotation_one_loss_round_per_50_fairness_rounds() -> None:
    # The original's default frequencies; without round times no round is fast.
    assert rotation(1) == [2, 4, 6]
    for round_ in (2, 30, 51):
        assert {1, 5} <= set(rotation(round_))
    assert rotation(52) == [2, 4, 6]


def test_budgeted_time_rotation_frequencies() -> None:
    params = {"loss_rounds": 2, "fairness_rounds": 1}
    kinds = ["loss" if rotation(round_, params) == [2, 4, 6] else "fair" for round_ in range(1, 7)]
    assert kinds == ["loss", "loss", "fair", "loss", "loss", "fair"]


def test_budgeted_time_rotation_round_1_budget_is_round_0s_time() -> None:
    # Round 1: the budget is round 0's time, which the mean cannot exceed: a loss round, never a fast one.
    assert rotation(1, round_times=np.array([9.0])) == [2, 4, 6]


def test_budgeted_time_rotation_round_2_after_no_fast_round_is_fast() -> None:
    # Round 2 draws the budget from U(0, mean of rounds 0 and 1) (no fast round yet: its mean is 0), below the
    # mean round time: the fastest devices by expected time, 0.393 (7, estimated), 0.412 (2), 0.5 (3).
    for seed in range(5):
        assert rotation(2, round_times=np.array([1.0, 1.0]), seed=seed) == [2, 3, 7]


def test_budgeted_time_rotation_budget_between_fast_and_other_rounds() -> None:
    # Rounds 0, 1 took 1 s, round 2 (fast) 0.2 s. Round 3's budget is U(0.2, 1.0) = 0.2 + 0.8 u; the mean time
    # 0.733 exceeds it when u < 2/3. u is the run's draw for round 3: a function of seed and repetition.
    times = np.array([1.0, 1.0, 0.2])
    outcomes = set()
    for seed in range(12):
        u = numpy_rng(seed, "budgeted_time_rotation-fit", 0).random(3)[2]
        fast = bool(0.2 + 0.8 * u < 2.2 / 3)
        outcomes.add(fast)
        picks = rotation(3, round_times=times, seed=seed)
        # Not fast: round 3 is the second non-fast round, a least-selected round (1 and 5 first).
        assert (picks == [2, 3, 7]) if fast else ({1, 5} <= set(picks))
    assert outcomes == {True, False}


def test_budgeted_time_rotation_explicit_budget() -> None:
    times = np.array([1.0, 1.5])  # mean 1.25
    assert rotation(2, {"time_budget": 1.0}, round_times=times) == [2, 3, 7]
    assert rotation(2, {"time_budget": 2.0}, round_times=times) != [2, 3, 7]
