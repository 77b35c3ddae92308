"""Every selection strategy: a hand-built population, the contract of select_devices, no hidden state.

The population below is shared by the per-strategy test files; expected picks are worked out by hand
in their comments.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from feles.config import PhaseParams
from feles.plugin_params import StrategyParamsError
from feles.strategies import SELECTORS, DeviceView, SelectionContext

ORIGINAL_FELES = [
    "random",
    "best_ips",
    "best_net_speed",
    "best_energy",
    "dynamic_sampling",
    "best_round_time",
    "loss_and_fairness",
    "best_time_expected",
    "budgeted_fairness_rotation",
    "budgeted_time_rotation",
    "limited_time",
    "limited_consumption",
    "ucb_cs",
]

# Eight devices. With E = 1, B = 32 and 600 examples each runs ceil(600/32) = 19 iterations; a fit job
# moves 2 * 10,000 parameters. Estimated times [s] (computation 19/ips + communication 2e4/net_speed):
#   device         0      1      2      3      4      5      6      7
#   computation    0.380  0.127  0.190  0.158  0.238  0.136  0.317  0.211
#   communication  0.200  1.000  0.133  0.400  0.167  0.667  0.222  0.182
#   total          0.580  1.127  0.323  0.558  0.404  0.802  0.539  0.393
IPS = np.array([50, 150, 100, 120, 80, 140, 60, 90], dtype=np.float64)
NET_SPEED = np.array([1e5, 2e4, 1.5e5, 5e4, 1.2e5, 3e4, 9e4, 1.1e5])
ENERGY = np.array([900, 100, 500, 700, 300, 800, 200, 600], dtype=np.float64)
TOTAL_TIME = np.array([0.580, 1.127, 0.323, 0.558, 0.404, 0.802, 0.539, 0.393])


def population(**fields: Any) -> DeviceView:
    """The eight devices above, never selected yet; `fields` replace any DeviceView field."""
    n = len(IPS)
    base = DeviceView(
        ips=IPS,
        data_sizes=np.full(n, 600, dtype=np.int64),
        net_speed=NET_SPEED,
        energy=ENERGY,
        times_selected=np.zeros(n, dtype=np.int64),
        times_failed=np.zeros(n, dtype=np.int64),
        last_selected_round=np.full(n, -1, dtype=np.int64),
        last_loss=np.full(n, np.nan),
        model_parameters=10_000,
        pow_comp_s=100.0,
        pow_net_s=200.0,
        loss_rounds=np.zeros(0, dtype=np.int64),
        loss_devices=np.zeros(0, dtype=np.int64),
        loss_values=np.zeros(0),
    )
    return replace(base, **fields)


def context(
    k: float | None = None,
    available: np.ndarray | None = None,
    round_: int = 0,
    seed: int = 0,
    devices: DeviceView | None = None,
    epochs: int = 1,
    phase: str = "fit",
    **fields: Any,
) -> SelectionContext:
    """k (a fraction of the available devices) defaults to 3 of them, or all when fewer are available."""
    devices = devices or population()
    available = np.arange(len(devices.ips)) if available is None else np.asarray(available)
    k = min(1.0, 3 / max(len(available), 1)) if k is None else k
    return SelectionContext(
        repetition=0,
        round=round_,
        phase=phase,
        k=k,
        num_devices=len(devices.ips),
        params=PhaseParams(k=k, epochs=epochs, batch_size=32),
        available=available,
        devices=devices,
        rng=np.random.default_rng(seed),
        seed=seed,  # the run's seed too, as the orchestrator passes it
        **fields,
    )


def select(name: str, params: dict[str, Any] | None = None, **context_fields: Any) -> list[int]:
    return SELECTORS.get(name)(params or {}).select_devices(context(**context_fields)).tolist()


def a_history() -> DeviceView:
    """The population after a few rounds: selections, failures, losses and observed times.

    Completed fit jobs [2, 0, 2, 1, 3, 0, 2, 0] with times 0: (0.4, 0.6), 2: (0.3, 0.5), 3: (0.5),
    4: (0.7, 0.8, 0.9), 6: (0.5, 0.7); devices 1, 5 and 7 never completed one. Their local losses by
    round (the last one is last_loss): 0: 1.2 (2), 0.9 (4); 2: 2.5 (1), 2.0 (3); 3: 0.4 (2); 4: 1.9 (1),
    1.7 (3), 1.5 (4); 6: 1.4 (0), 1.1 (1).
    """
    return population(
        times_selected=np.array([3, 0, 2, 1, 4, 0, 2, 1]),
        times_failed=np.array([1, 0, 0, 0, 1, 0, 0, 1]),
        last_selected_round=np.array([4, -1, 3, 2, 4, -1, 1, 0]),
        last_loss=np.array([0.9, np.nan, 2.0, 0.4, 1.5, np.nan, 1.1, np.nan]),
        time_sum=np.array([1.0, 0.0, 0.8, 0.5, 2.4, 0.0, 1.2, 0.0]),
        time_sq_sum=np.array([0.52, 0.0, 0.34, 0.25, 1.94, 0.0, 0.74, 0.0]),
        loss_rounds=np.array([0, 1, 1, 1, 2, 2, 3, 3, 4, 4]),
        loss_devices=np.array([6, 2, 4, 6, 0, 3, 2, 4, 0, 4]),
        loss_values=np.array([1.4, 2.5, 1.9, 1.1, 1.2, 0.4, 2.0, 1.7, 0.9, 1.5]),
    )


def test_all_thirteen_strategies_of_the_original_feles_are_registered() -> None:
    assert set(ORIGINAL_FELES) <= set(SELECTORS.names())


@pytest.mark.parametrize("name", ORIGINAL_FELES)
@pytest.mark.parametrize("round_", [0, 5])
def test_selects_distinct_available_devices_sorted(name: str, round_: int) -> None:
    available = np.array([0, 2, 3, 5, 6, 7])
    picked = select(name, available=available, round_=round_, devices=a_history())
    assert picked == sorted(set(picked))
    assert set(picked) <= set(available.tolist())
    assert 1 <= len(picked) <= 3


@pytest.mark.parametrize("name", ORIGINAL_FELES)
def test_deterministic_function_of_the_context(name: str) -> None:
    # The same context (seeded generator included) gives the same devices, from a fresh selector or a used one:
    # no state survives between rounds, so a restarted orchestrator picks what the first one would have.
    selector = SELECTORS.get(name)({})
    first = selector.select_devices(context(round_=3, seed=11, devices=a_history())).tolist()
    selector.select_devices(context(round_=4, seed=12))
    again = selector.select_devices(context(round_=3, seed=11, devices=a_history())).tolist()
    fresh = SELECTORS.get(name)({}).select_devices(context(round_=3, seed=11, devices=a_history())).tolist()
    assert first == again == fresh


@pytest.mark.parametrize("name", ORIGINAL_FELES)
def test_unknown_parameter_is_an_error_naming_it(name: str) -> None:
    with pytest.raises(StrategyParamsError, match=rf"selection {name}: unknown parameter\(s\) typo_key"):
        SELECTORS.get(name)({"typo_key": 1})


@pytest.mark.parametrize("name", ORIGINAL_FELES)
def test_never_more_than_the_available_devices(name: str) -> None:
    assert len(select(name, available=np.array([4]), devices=a_history())) <= 1


HISTORY_BASED = [
    "loss_and_fairness",
    "ucb_cs",
    "best_time_expected",
    "budgeted_fairness_rotation",
    "budgeted_time_rotation",
    "limited_time",
    "limited_consumption",
]


@pytest.mark.parametrize("name", HISTORY_BASED)
def test_round_0_is_a_uniform_draw(name: str) -> None:
    # As in the original: no history to rank by, so context.size devices drawn from the round's generator.
    draws = set()
    for seed in range(6):
        picks = select(name, devices=a_history(), round_=0, seed=seed)
        expected = np.sort(np.random.default_rng(seed).choice(np.arange(8), size=3, replace=False)).tolist()
        assert picks == expected
        draws.add(tuple(picks))
    assert len(draws) > 1


def test_ties_are_broken_by_the_seeded_generator() -> None:
    # Nobody was selected yet: least-selected ties everywhere; different seeds pick different devices.
    picks = {tuple(select("budgeted_time_rotation", {"loss_rounds": 0}, seed=seed)) for seed in range(10)}
    assert len(picks) > 1
