"""Selectors that read the resources devices report: best_*, best_round_time, limited_time, limited_consumption."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from feles.strategies import SELECTORS
from tests.unit.test_selection_common import TOTAL_TIME, a_history, context, select

SOME = np.array([0, 2, 4, 6])


@pytest.mark.parametrize(
    ("name", "everyone", "some"),
    [
        # ips 150 (1), 140 (5), 120 (3); among 0, 2, 4, 6: 100 (2), 80 (4), 60 (6)
        ("best_ips", [1, 3, 5], [2, 4, 6]),
        # net speed 1.5e5 (2), 1.2e5 (4), 1.1e5 (7); among 0, 2, 4, 6: 2, 4, then 1e5 (0)
        ("best_net_speed", [2, 4, 7], [0, 2, 4]),
        # energy 900 (0), 800 (5), 700 (3); among 0, 2, 4, 6: 900, 500 (2), 300 (4)
        ("best_energy", [0, 3, 5], [0, 2, 4]),
    ],
)
def test_best_resource(name: str, everyone: list[int], some: list[int]) -> None:
    assert select(name) == everyone
    assert select(name, available=SOME) == some


def test_best_round_time_picks_the_shortest_estimated_jobs() -> None:
    # Totals 0.323 (2), 0.393 (7), 0.404 (4) are the smallest.
    assert select("best_round_time") == [2, 4, 7]
    assert np.argsort(TOTAL_TIME)[:3].tolist() == [2, 7, 4]


def test_best_round_time_weighs_computation_by_the_epochs() -> None:
    # With 5 epochs computation dominates: 0.95 + 0.133 (2), 0.792 + 0.4 (3), 1.056 + 0.182 (7).
    assert select("best_round_time", epochs=5) == [2, 3, 7]


def test_best_round_time_in_the_eval_phase_counts_one_transfer() -> None:
    # Communication halves: 0.257 (2), 0.302 (7), 0.321 (4), 0.358 (3): still 2, 4, 7 ...
    assert select("best_round_time", phase="eval") == [2, 4, 7]
    # ... but with only 0, 1, 3, 5 available: 0.358 (3), 0.469 (5), 0.48 (0) beat 0.627 (1).
    assert select("best_round_time", phase="eval", available=np.array([0, 1, 3, 5])) == [0, 3, 5]


def test_limited_time_keeps_only_devices_within_the_total_limit() -> None:
    # Total time <= 0.45 s: devices 2, 4, 7 exactly.
    assert select("limited_time", {"total_time_limit": 0.45}) == [2, 4, 7]


def test_limited_time_combines_limits_and_may_select_fewer() -> None:
    # Computation <= 0.2 s: 1, 2, 3, 5; communication <= 0.2 s: 0, 2, 4, 7; both: only 2.
    params = {"computation_time_limit": 0.2, "communication_time_limit": 0.2}
    assert select("limited_time", params) == [2]
    picks = select("limited_time", {"computation_time_limit": 0.2}, seed=3)
    assert len(picks) == 3
    assert set(picks) <= {1, 2, 3, 5}


def test_limited_time_chooses_randomly_among_the_eligible() -> None:
    picks = {tuple(select("limited_time", {"computation_time_limit": 0.2}, seed=seed)) for seed in range(20)}
    assert len(picks) > 1


def test_limited_time_automatic_limits() -> None:
    # Mean + mean absolute deviation: computation 0.289 s excludes 0 and 6; communication 0.610 s and
    # total 0.778 s exclude 1 and 5. Eligible: 2, 3, 4, 7.
    for seed in range(10):
        picks = select("limited_time", {"auto": True}, seed=seed)
        assert len(picks) == 3
        assert set(picks) <= {2, 3, 4, 7}


def test_limited_time_without_limits_is_random() -> None:
    assert len(select("limited_time")) == 3


def test_limited_consumption_without_budgets_is_biggest_loss_first() -> None:
    # Never-trained 1, 5, 7 first; without them, losses 2.0 (2), 1.5 (4), 1.1 (6).
    assert select("limited_consumption", devices=a_history()) == [1, 5, 7]
    assert select("limited_consumption", devices=a_history(), available=np.array([0, 2, 3, 4, 6])) == [2, 4, 6]


def test_limited_consumption_computation_and_network_budgets() -> None:
    available = np.array([0, 2, 3, 4, 6])
    # 19 iterations each: a budget of 40 iterations fits two devices.
    assert select("limited_consumption", {"computation_limit": 40}, devices=a_history(), available=available) == [2, 4]
    # 20,000 parameters each: 59,999 fits two.
    assert select("limited_consumption", {"network_limit": 59_999}, devices=a_history(), available=available) == [2, 4]


def test_limited_consumption_energy_budget_skips_what_does_not_fit() -> None:
    # Energy 100 mWh/s * computation + 200 mWh/s * communication: 2: 45.7, 4: 57.1, 6: 76.1, 0: 78.0, 7: 57.5.
    # Loss order 2, 4, 6, 0, 7 (7's loss set to 0.1): 2 + 4 = 102.8; 6 and 0 overflow 170; 7 fits (160.2).
    devices = a_history()
    devices.last_loss[7] = 0.1
    view = replace(devices, pow_comp_s=100.0, pow_net_s=200.0)
    picks = select("limited_consumption", {"energy_limit": 170}, devices=view, available=np.array([0, 2, 4, 6, 7]))
    assert picks == [2, 4, 7]


def test_limited_consumption_energy_needs_the_energy_model() -> None:
    selector = SELECTORS.get("limited_consumption")({"energy_limit": 100})
    with pytest.raises(RuntimeError, match="energy_limit needs the energy model"):
        selector.select_devices(context(devices=a_history()))
