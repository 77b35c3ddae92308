"""Selectors that read resources and times: best_*, best_round_time, limited_time, limited_consumption."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np
import pytest

from feles.plugin_params import StrategyParamsError
from feles.strategies import SELECTORS, DeviceView
from feles.strategies.selection.limited_consumption import choose
from tests.unit.test_selection_common import TOTAL_TIME, a_history, context, population, select

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


def test_best_round_time_picks_among_the_available_only() -> None:
    # The original ranked every device, available or not; FELES's planner takes available devices only.
    # Without the fastest, 2 (0.323 s): 7 (0.393), 4 (0.404), 6 (0.539). k = 0.45: 3 devices whether k counts
    # all 8 devices or the 7 available.
    assert select("best_round_time", available=np.array([0, 1, 3, 4, 5, 6, 7]), k=0.45) == [4, 6, 7]


# Every device completed one fit job; observed times [s] and last losses:
#   device   0    1    2    3    4    5    6    7
#   time     1    1    6    1    7    1    1    1
#   loss     0.9  0.5  2.0  0.4  1.5  0.3  1.1  0.8
LOSSES = np.array([0.9, 0.5, 2.0, 0.4, 1.5, 0.3, 1.1, 0.8])
TIMES = np.array([1.0, 1.0, 6.0, 1.0, 7.0, 1.0, 1.0, 1.0])


def one_job_each(**fields: object) -> DeviceView:
    ones = np.ones(8, dtype=np.int64)
    base = population(
        times_selected=ones,
        last_selected_round=ones * 3,
        last_loss=LOSSES.copy(),
        time_sum=TIMES,
        time_sq_sum=TIMES**2,
    )
    return replace(base, **fields)


def test_limited_time_default_total_limit_is_5_s_of_historical_times() -> None:
    # 2 and 4 took 6 s and 7 s: out; the largest losses among the rest: 1.1 (6), 0.9 (0), 0.8 (7).
    assert select("limited_time", devices=one_job_each(), round_=4) == [0, 6, 7]


def test_limited_time_picks_the_largest_losses_within_the_limit() -> None:
    # The original's rule, not a uniform draw: the same devices whatever the seed.
    for seed in range(5):
        assert select("limited_time", {"total_time_limit": None}, devices=one_job_each(), round_=4, seed=seed) == [
            2,
            4,
            6,
        ]


def test_limited_time_devices_never_observed_are_within_the_total_limit() -> None:
    # Observed quadratic means 0.51 (0), 0.41 (2), 0.5 (3), 0.80 (4), 0.61 (6); 1, 5, 7 never completed a job
    # (time 0, as in the original). Within 0.45 s: 1, 5, 7 (never trained: first) and 2.
    assert select("limited_time", {"total_time_limit": 0.45}, devices=a_history(), round_=5, k=0.5) == [1, 2, 5, 7]


def test_limited_time_combines_limits_and_may_select_fewer() -> None:
    # This round's computation <= 0.2 s: 1, 2, 3, 5; communication <= 0.2 s: 0, 2, 4, 7; both: only 2.
    params = {"computation_time_limit": 0.2, "communication_time_limit": 0.2}
    assert select("limited_time", params, devices=a_history(), round_=5) == [2]
    # Computation only: never-trained 1 and 5 first, then the larger loss of 2 (2.0) and 3 (0.4).
    assert select("limited_time", {"computation_time_limit": 0.2}, devices=a_history(), round_=5) == [1, 2, 5]


def test_limited_time_automatic_limits() -> None:
    # Each null limit becomes mean + mean absolute deviation. Total times 1, 1, 6, 1, 7, 1, 1, 1: 2.375 + 2.156
    # = 4.53 s excludes 2 and 4; computation 0.289 s excludes 0 and 6; communication 0.610 s excludes 1 and 5.
    params = {"total_time_limit": None, "auto": True}
    assert select("limited_time", params, devices=one_job_each(), round_=4) == [3, 7]


def test_limited_time_parameter_errors_name_the_key() -> None:
    with pytest.raises(StrategyParamsError, match="selection limited_time: total_time_limit must be a number > 0"):
        SELECTORS.get("limited_time")({"total_time_limit": 0})


# Energy with pow_comp_s 2,000 and pow_net_s 4,000 mWh/s (20 times the defaults) [mWh]:
#   device   0     1     2    3     4     5     6     7
#   energy   1560  4253  913  1917  1142  2938  1522  1149
EXPENSIVE = {"pow_comp_s": 2000.0, "pow_net_s": 4000.0}


def test_limited_consumption_default_energy_budget_is_3400_mwh() -> None:
    # Smallest sum of 1/loss without a budget: 2, 4, 6 (0.5 + 0.67 + 0.91), but 3,577 mWh > 3,400; the best
    # set within it is 2, 4, 7 (2.42 of 1/loss, 3,204 mWh).
    devices = one_job_each(**EXPENSIVE)
    assert select("limited_consumption", devices=devices, round_=4) == [2, 4, 7]
    assert select("limited_consumption", {"energy_limit": None}, devices=devices, round_=4) == [2, 4, 6]


def test_limited_consumption_selects_exactly_k_devices_when_a_set_fits() -> None:
    # Device 2 runs 100 iterations (3,200 examples), the others 10. A budget of 115 iterations: 2 and any two
    # others take 120, so the best three leave 2 out: 4, 6, 0 (1/loss 0.67 + 0.91 + 1.11); a greedy walk from
    # the biggest loss took 2 and 4, and then nothing fitted.
    sizes = np.array([320, 320, 3200, 320, 320, 320, 320, 320])
    devices = one_job_each(data_sizes=sizes)
    params = {"computation_limit": 115, "energy_limit": None}
    assert select("limited_consumption", params, devices=devices, round_=4) == [0, 4, 6]


def test_limited_consumption_selects_the_largest_count_that_fits() -> None:
    # 25 iterations fit two devices of 10, not three: the best two, 4 and 6.
    sizes = np.array([320, 320, 3200, 320, 320, 320, 320, 320])
    params = {"computation_limit": 25, "energy_limit": None}
    assert select("limited_consumption", params, devices=one_job_each(data_sizes=sizes), round_=4) == [4, 6]
    assert select("limited_consumption", {"computation_limit": 5}, devices=one_job_each(), round_=4) == []


def test_limited_consumption_network_budget() -> None:
    # 20,000 parameters each: 59,999 fits two devices.
    params = {"network_limit": 59_999, "energy_limit": None}
    assert select("limited_consumption", params, devices=one_job_each(), round_=4) == [2, 4]


def test_limited_consumption_never_trained_devices_first() -> None:
    # Their 1/loss is 0 (nothing known, as in the original): 1, 5 and 7 never trained.
    assert select("limited_consumption", devices=a_history(), round_=5) == [1, 5, 7]


def test_limited_consumption_zero_loss_is_the_last_choice() -> None:
    losses = LOSSES.copy()
    losses[[2, 4]] = 0.0
    assert select("limited_consumption", devices=one_job_each(last_loss=losses), round_=4) == [0, 6, 7]


def test_limited_consumption_energy_needs_the_energy_model() -> None:
    selector = SELECTORS.get("limited_consumption")({})
    devices = replace(a_history(), pow_comp_s=None, pow_net_s=None)
    with pytest.raises(RuntimeError, match="energy_limit needs the energy model"):
        selector.select_devices(context(devices=devices, round_=5))


@pytest.mark.parametrize("seed", range(8))
def test_limited_consumption_is_optimal_against_brute_force(seed: int) -> None:
    # Random small instances with two budgets, ties included: the integer program (after dropping dominated
    # devices) reaches the best objective over every feasible set of the largest feasible size.
    rng = np.random.default_rng(seed)
    scores = rng.choice([0.5, 1.0, 1.5, 2.0, 3.0], size=10)
    costs = rng.integers(1, 6, size=(2, 10)).astype(np.float64)
    limits = np.array([9.0, 10.0])
    feasible = [list(s) for c in range(4) for s in combinations(range(10), c) if (costs[:, s].sum(1) <= limits).all()]
    best_count = max(len(s) for s in feasible)
    best = min(scores[s].sum() for s in feasible if len(s) == best_count)
    chosen = choose(scores, costs, limits, 3)
    assert len(chosen) == best_count
    assert scores[chosen].sum() == pytest.approx(best)
    assert (costs[:, chosen].sum(axis=1) <= limits).all()


def test_round_time_estimates_count_scaffolds_control_variates_on_the_network() -> None:
    from feles.strategies.estimates import communication_time, transferred_parameters

    plain = context()
    scaffold = replace(plain, devices=replace(plain.devices, fit_model_copies=2))
    assert transferred_parameters(scaffold) == 2 * transferred_parameters(plain)
    np.testing.assert_allclose(communication_time(scaffold), 2 * communication_time(plain))
    evaluation = replace(scaffold, phase="eval")  # eval moves the model only, down
    assert transferred_parameters(evaluation) == plain.devices.model_parameters
