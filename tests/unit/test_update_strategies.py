"""Update strategies on hand-built devices: static, bestrt, uniform, equal_computation_time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from feles.config import PhaseParams
from feles.devices import local_iterations
from feles.plugin_params import StrategyParamsError
from feles.strategies import UPDATE_OPTIMIZERS, LocalWork, UpdateContext
from tests.unit.test_selection_common import population

ORIGINAL_FELES = ["static", "bestrt", "uniform", "equal_computation_time"]
SELECTED = np.array([0, 1, 2, 4])  # ips 50, 150, 100, 80


def plan(
    name: str,
    params: dict[str, Any] | None = None,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    num_examples: int | None = None,
    data_sizes: np.ndarray | None = None,
    seed: int = 0,
    selected: np.ndarray = SELECTED,
    ips: np.ndarray | None = None,
) -> LocalWork:
    devices = population() if data_sizes is None else population(data_sizes=data_sizes)
    devices = devices if ips is None else population(data_sizes=devices.data_sizes, ips=ips.astype(np.float64))
    context = UpdateContext(
        repetition=0,
        round=0,
        phase="fit",
        selected=selected,
        params=PhaseParams(epochs=epochs, batch_size=batch_size, num_examples=num_examples),
        devices=devices,
        rng=np.random.default_rng(seed),
    )
    return UPDATE_OPTIMIZERS.get(name)(params or {}).plan(context)


def test_all_four_strategies_of_the_original_feles_are_registered() -> None:
    assert set(ORIGINAL_FELES) <= set(UPDATE_OPTIMIZERS.names())


@pytest.mark.parametrize("name", ORIGINAL_FELES)
def test_work_is_aligned_positive_and_within_the_data(name: str) -> None:
    sizes = np.array([600, 50, 600, 600, 10, 600, 600, 600])
    work = plan(name, data_sizes=sizes, num_examples=400)
    assert work.devices.tolist() == SELECTED.tolist()
    for array in (work.epochs, work.batch_size, work.num_examples):
        assert array.dtype == np.int64
        assert len(array) == len(SELECTED)
        assert (array >= 1).all()
    assert (work.num_examples <= sizes[SELECTED]).all()


@pytest.mark.parametrize("name", ORIGINAL_FELES)
def test_unknown_parameter_is_an_error_naming_it(name: str) -> None:
    with pytest.raises(StrategyParamsError, match=rf"update {name}: unknown parameter\(s\) typo_key"):
        UPDATE_OPTIMIZERS.get(name)({"typo_key": 1})


def test_bestrt_scales_epochs_by_speed_relative_to_the_fastest() -> None:
    # floor(10 * ips / 150): 3.33 -> 3, 10, 6.67 -> 6, 5.33 -> 5; B and N untouched.
    work = plan("bestrt", num_examples=100)
    assert work.epochs.tolist() == [3, 10, 6, 5]
    assert work.batch_size.tolist() == [32] * 4
    assert work.num_examples.tolist() == [100] * 4


def test_bestrt_never_gives_more_than_the_configured_epochs() -> None:
    # The original planned before selecting, against device -1 (here device 7, ips 90): devices 1 and 2
    # (ips 150, 100) would get floor(10 * 150 / 90) = 16 and 11 epochs. The reference is the fastest selected.
    work = plan("bestrt", selected=np.array([1, 2, 7]))
    assert work.epochs.tolist() == [10, 6, 6]
    assert work.epochs.max() == 10


def test_bestrt_gives_slow_devices_at_least_one_epoch() -> None:
    assert plan("bestrt", epochs=2).epochs.tolist() == [1, 2, 1, 1]


def test_bestrt_fastest_is_among_the_selected_not_all_devices() -> None:
    # Device 1 (ips 150) not selected: the fastest selected is 2 (ips 100).
    work = plan("bestrt", selected=np.array([0, 2, 4]))
    assert work.epochs.tolist() == [5, 10, 8]


def test_uniform_draws_only_the_examples_by_default() -> None:
    # The original FELES: E and B as configured, N drawn from 20..N (FELES: 1..E and 1..N before).
    seen_examples = set()
    for seed in range(100):
        work = plan("uniform", epochs=3, num_examples=25, seed=seed)
        assert work.epochs.tolist() == [3] * 4
        assert work.batch_size.tolist() == [32] * 4
        seen_examples |= set(work.num_examples.tolist())
    assert seen_examples == set(range(20, 26))


def test_uniform_devices_with_fewer_than_20_examples_keep_them_all() -> None:
    sizes = np.array([10, 600, 19, 600, 600, 600, 600, 600])
    for seed in range(20):
        work = plan("uniform", num_examples=30, data_sizes=sizes, seed=seed)
        assert work.num_examples[[0, 2]].tolist() == [10, 19]
        assert ((work.num_examples[[1, 3]] >= 20) & (work.num_examples[[1, 3]] <= 30)).all()


def test_uniform_draws_epochs_when_asked() -> None:
    seen = {e for seed in range(100) for e in plan("uniform", {"epochs_min": 1}, epochs=3, seed=seed).epochs.tolist()}
    assert seen == {1, 2, 3}


def test_uniform_explicit_ranges() -> None:
    params = {"epochs_min": 4, "epochs_max": 6, "batch_size_min": 8, "batch_size_max": 16, "num_examples_min": 100}
    for seed in range(30):
        work = plan("uniform", params, seed=seed)
        assert set(work.epochs.tolist()) <= {4, 5, 6}
        assert ((work.batch_size >= 8) & (work.batch_size <= 16)).all()
        assert ((work.num_examples >= 100) & (work.num_examples <= 600)).all()


def test_uniform_homogeneous_devices_take_the_maximum() -> None:
    work = plan("uniform", {"p_heterogeneous": 0.0, "epochs_max": 7}, num_examples=50)
    assert work.epochs.tolist() == [7] * 4
    assert work.num_examples.tolist() == [50] * 4


def test_uniform_is_a_function_of_the_seed() -> None:
    first, second = plan("uniform", seed=5), plan("uniform", seed=5)
    assert first.epochs.tolist() == second.epochs.tolist()
    assert first.num_examples.tolist() == second.num_examples.tolist()


def test_uniform_rejects_an_empty_range() -> None:
    with pytest.raises(StrategyParamsError, match=r"epochs_min \(5\) is larger than epochs_max \(2\)"):
        UPDATE_OPTIMIZERS.get("uniform")({"epochs_min": 5, "epochs_max": 2})


def test_equal_computation_time_varies_epochs() -> None:
    # 1 s at ips 50, 150, 100, 80 with 19 iterations per epoch: floor(ips / 19) = 2, 7, 5, 4 epochs.
    work = plan("equal_computation_time", {"computation_time": 1.0})
    assert work.epochs.tolist() == [2, 7, 5, 4]
    seconds = local_iterations(work.epochs, work.batch_size, work.num_examples) / population().ips[SELECTED]
    assert (seconds <= 1.0).all()
    assert (seconds > 1.0 - 19 / population().ips[SELECTED]).all()  # within one epoch of the target


def test_equal_computation_time_varies_the_batch_size() -> None:
    # One epoch of 50, 150, 100, 80 steps over 600 examples: B = ceil(600 / steps) = 12, 4, 6, 8.
    work = plan("equal_computation_time", {"vary": "batch_size", "computation_time": 1.0}, epochs=1)
    assert work.batch_size.tolist() == [12, 4, 6, 8]
    assert local_iterations(work.epochs, work.batch_size, work.num_examples).tolist() == [50, 150, 100, 75]


def test_equal_computation_time_varies_the_examples() -> None:
    # 0.2 s: 10, 30, 20, 16 steps of 32 examples.
    work = plan(
        "equal_computation_time",
        {"vary": "num_examples", "computation_time": 0.2},
        epochs=1,
        data_sizes=np.full(8, 2000),
    )
    assert work.num_examples.tolist() == [320, 960, 640, 512]
    seconds = local_iterations(work.epochs, work.batch_size, work.num_examples) / population().ips[SELECTED]
    assert np.allclose(seconds, 0.2)


def test_equal_computation_time_targets_the_original_0_15_s_by_default() -> None:
    # 0.15 s at ips 500, 1500, 1000, 800: floor(0.15 ips) = 75, 225, 150, 120 iterations of 19 per epoch.
    work = plan("equal_computation_time", selected=np.array([0, 1, 2, 3]), ips=np.array([500, 1500, 1000, 800] * 2))
    assert work.epochs.tolist() == [3, 11, 7, 6]


def test_equal_computation_time_never_gives_zero_epochs() -> None:
    assert plan("equal_computation_time", {"computation_time": 0.01}).epochs.tolist() == [1, 1, 1, 1]


def test_equal_computation_time_parameter_errors() -> None:
    with pytest.raises(StrategyParamsError, match="vary must be one of epochs, batch_size, num_examples"):
        UPDATE_OPTIMIZERS.get("equal_computation_time")({"vary": "rounds"})
    with pytest.raises(StrategyParamsError, match="computation_time must be a number > 0"):
        UPDATE_OPTIMIZERS.get("equal_computation_time")({"computation_time": 0})
