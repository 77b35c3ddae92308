"""feles.strategies: random selection, static update, random local data, parameters and registries."""

from __future__ import annotations

import numpy as np
import pytest

from feles.config import PhaseParams
from feles.plugin_params import StrategyParamsError, take_params
from feles.registry import UnknownPluginError
from feles.strategies import (
    LOCAL_DATA_OPTIMIZERS,
    SELECTORS,
    UPDATE_OPTIMIZERS,
    DeviceView,
    SelectionContext,
    UpdateContext,
)
from feles.strategies.data.random import RandomLocalData
from feles.strategies.selection import selection_size
from feles.strategies.selection.random import RandomSelector
from feles.strategies.update.static import StaticUpdate


def view(num: int, data_sizes: np.ndarray | None = None) -> DeviceView:
    return DeviceView(
        ips=np.full(num, 100.0),
        data_sizes=np.full(num, 600, dtype=np.int64) if data_sizes is None else data_sizes,
        net_speed=np.full(num, 1e5),
        energy=np.full(num, 1e4),
        times_selected=np.zeros(num, dtype=np.int64),
        times_failed=np.zeros(num, dtype=np.int64),
        last_selected_round=np.full(num, -1, dtype=np.int64),
        last_loss=np.full(num, np.nan),
        model_parameters=1000,
    )


def selection_context(k: float, num: int, available: np.ndarray, seed: int = 0) -> SelectionContext:
    return SelectionContext(
        repetition=0,
        round=0,
        phase="fit",
        k=k,
        num_devices=num,
        params=PhaseParams(k=k),
        available=available,
        devices=view(num),
        rng=np.random.default_rng(seed),
    )


def update_context(selected: np.ndarray, params: PhaseParams, data_sizes: np.ndarray) -> UpdateContext:
    return UpdateContext(
        repetition=0,
        round=0,
        phase="fit",
        selected=selected,
        params=params,
        devices=view(len(data_sizes), data_sizes),
        rng=np.random.default_rng(0),
    )


# --- random selection -------------------------------------------------------------------------------


def test_random_selector_picks_floor_k_available_distinct_available_devices() -> None:
    available = np.arange(0, 100, 2)  # 50 available among 100
    selected = RandomSelector({}).select_devices(selection_context(0.25, 100, available))
    assert len(selected) == 12  # floor(0.25 * 50 available), not floor(0.25 * 100 devices)
    assert len(np.unique(selected)) == 12
    assert np.isin(selected, available).all()
    assert selected.tolist() == sorted(selected.tolist())


def test_random_selector_floors_the_fraction() -> None:
    available = np.arange(37)
    selected = RandomSelector({}).select_devices(selection_context(0.1, 37, available))
    assert len(selected) == 3  # floor(3.7)


def test_random_selector_takes_one_device_when_k_of_the_available_is_below_one() -> None:
    available = np.array([3, 8, 41])
    selected = RandomSelector({}).select_devices(selection_context(0.2, 50, available))
    assert len(selected) == 1  # floor(0.2 * 3) = 0, raised to 1
    assert np.isin(selected, available).all()


def test_random_selector_with_no_available_device() -> None:
    selected = RandomSelector({}).select_devices(selection_context(0.5, 50, np.array([], dtype=np.int64)))
    assert len(selected) == 0


def test_random_selector_is_deterministic_for_the_same_seed() -> None:
    available = np.arange(1000)
    first = RandomSelector({}).select_devices(selection_context(0.1, 1000, available, seed=7))
    second = RandomSelector({}).select_devices(selection_context(0.1, 1000, available, seed=7))
    other = RandomSelector({}).select_devices(selection_context(0.1, 1000, available, seed=8))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_random_selector_is_roughly_uniform() -> None:
    # 2,000 draws of 10 among 100: each device is picked Binomial(2000, 0.1) times, mean 200, sd 13.4.
    # 200 +- 80 (6 sd) holds for every device with probability > 1 - 1e-7.
    rng = np.random.default_rng(0)
    counts = np.zeros(100, dtype=np.int64)
    selector = RandomSelector({})
    for _ in range(2000):
        context = SelectionContext(0, 0, "fit", 0.1, 100, PhaseParams(k=0.1), np.arange(100), view(100), rng)
        counts[selector.select_devices(context)] += 1
    assert counts.sum() == 20_000
    assert counts.min() > 120
    assert counts.max() < 280


@pytest.mark.parametrize(
    ("k", "num", "available", "expected"),
    [
        (0.1, 100, 100, 10),
        (0.1, 100, 80, 8),
        (0.5, 100, 4, 2),
        (0.1, 100, 4, 1),
        (0.05, 30, 30, 1),
        (1.0, 7, 7, 7),
        (0.5, 9, 9, 4),
        (0.5, 9, 0, 0),
    ],
)
def test_selection_size(k: float, num: int, available: int, expected: int) -> None:
    # k is a fraction of the devices available in the round, floored, at least 1 when any is available.
    assert selection_size(k, available) == expected
    context = selection_context(k, num, np.arange(available))
    assert context.size == expected


@pytest.mark.parametrize(("k", "num", "expected"), [(0.29, 100, 29), (0.57, 100, 57), (0.7, 90, 63), (0.58, 50, 29)])
def test_selection_size_is_exact_for_decimal_fractions(k: float, num: int, expected: int) -> None:
    # k is written in decimal in the spec: 0.29 of 100 devices is 29 devices, not 28
    # (0.29 * 100 == 28.999999999999996 in binary floating point).
    assert selection_size(k, num) == expected
    selected = RandomSelector({}).select_devices(selection_context(k, num, np.arange(num)))
    assert len(selected) == expected


# --- static update ----------------------------------------------------------------------------------


def test_static_update_gives_the_configured_work() -> None:
    sizes = np.array([600, 50, 1000, 20], dtype=np.int64)
    selected = np.array([0, 2, 3])
    params = PhaseParams(epochs=3, batch_size=16, num_examples=100)
    work = StaticUpdate({}).plan(update_context(selected, params, sizes))
    assert work.devices.tolist() == [0, 2, 3]
    assert work.epochs.tolist() == [3, 3, 3]
    assert work.batch_size.tolist() == [16, 16, 16]
    assert work.num_examples.tolist() == [100, 100, 20]  # capped by device 3's 20 examples
    for array in (work.epochs, work.batch_size, work.num_examples):
        assert np.issubdtype(array.dtype, np.integer)


def test_static_update_none_uses_all_of_each_device_data() -> None:
    sizes = np.array([600, 50, 1000, 20], dtype=np.int64)
    selected = np.array([1, 2])
    work = StaticUpdate({}).plan(update_context(selected, PhaseParams(num_examples=None), sizes))
    assert work.num_examples.tolist() == [50, 1000]
    assert work.epochs.tolist() == [1, 1]
    assert work.batch_size.tolist() == [32, 32]


def test_static_update_with_no_selected_device() -> None:
    work = StaticUpdate({}).plan(update_context(np.array([], dtype=np.int64), PhaseParams(), np.array([5, 6])))
    assert len(work.devices) == len(work.epochs) == len(work.batch_size) == len(work.num_examples) == 0


# --- random local data ------------------------------------------------------------------------------


def test_random_local_data_picks_distinct_positions() -> None:
    positions = RandomLocalData({}).choose(num_available=600, num_examples=100, rng=np.random.default_rng(0))
    assert len(positions) == 100
    assert len(np.unique(positions)) == 100
    assert positions.min() >= 0
    assert positions.max() < 600
    assert positions.tolist() == sorted(positions.tolist())


def test_random_local_data_takes_everything_when_asked_for_more() -> None:
    positions = RandomLocalData({}).choose(num_available=20, num_examples=100, rng=np.random.default_rng(0))
    assert positions.tolist() == list(range(20))


def test_random_local_data_is_deterministic_for_the_same_seed() -> None:
    choose = RandomLocalData({}).choose
    first = choose(600, 50, np.random.default_rng(3))
    np.testing.assert_array_equal(first, choose(600, 50, np.random.default_rng(3)))
    assert not np.array_equal(first, choose(600, 50, np.random.default_rng(4)))


# --- parameters and registries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "owner"),
    [(RandomSelector, "selection random"), (StaticUpdate, "update static"), (RandomLocalData, "data random")],
)
def test_unknown_strategy_parameter_names_the_key(cls: type, owner: str) -> None:
    with pytest.raises(StrategyParamsError) as info:
        cls({"temperature": 2, "alpha": 1})
    message = str(info.value)
    assert message.startswith(f"{owner}: unknown parameter(s) alpha, temperature")
    assert "(allowed: none)" in message
    assert isinstance(info.value, ValueError)


def test_strategies_accept_empty_params() -> None:
    assert RandomSelector({}).params == {}
    assert StaticUpdate({}).params == {}
    assert RandomLocalData({}).params == {}


def test_take_params_merges_defaults_and_lists_allowed_keys() -> None:
    assert take_params("x", {"b": 5}, {"a": 1, "b": 2}) == {"a": 1, "b": 5}
    with pytest.raises(StrategyParamsError, match=r"^x: unknown parameter\(s\) c \(allowed: a, b\)$"):
        take_params("x", {"c": 1}, {"b": 2, "a": 1})


def test_built_in_strategies_are_registered() -> None:
    assert SELECTORS.get("random") is RandomSelector
    assert UPDATE_OPTIMIZERS.get("static") is StaticUpdate
    assert LOCAL_DATA_OPTIMIZERS.get("random") is RandomLocalData


@pytest.mark.parametrize(
    ("registry", "kind"),
    [
        (SELECTORS, "selection strategy"),
        (UPDATE_OPTIMIZERS, "update strategy"),
        (LOCAL_DATA_OPTIMIZERS, "local data strategy"),
    ],
)
def test_unknown_strategy_name_lists_known_ones(registry: object, kind: str) -> None:
    with pytest.raises(UnknownPluginError) as info:
        registry.get("oort")
    message = str(info.value)
    assert f"unknown {kind} 'oort'" in message
    assert f"known: {', '.join(registry.names())} " in message
    assert registry.names()


def test_strategy_import_path() -> None:
    assert SELECTORS.get("feles.strategies.selection.random:RandomSelector") is RandomSelector
