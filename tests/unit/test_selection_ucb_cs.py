"""ucb_cs: the original FELES's discounted UCB of the local loss, on the hand-built history of a_history()."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from feles.plugin_params import StrategyParamsError
from feles.strategies import SELECTORS
from tests.unit.test_selection_common import a_history, context, select

# At round 5 with gamma 0.2 the weights of rounds 0..4 are 0.00032, 0.0016, 0.008, 0.04, 0.2; T = 0.24992.
#   device  rounds (loss)              N        L (discounted mean)  U = 10 sqrt(2 ln(T/N))  L + U
#   0       2 (1.2), 4 (0.9)           0.208    0.912                6.06                    6.97
#   2       1 (2.5), 3 (2.0)           0.0416   2.019                18.94                   20.96
#   3       2 (0.4)                    0.008    0.4                  26.24                   26.64
#   4       1 (1.9), 3 (1.7), 4 (1.5)  0.2416   1.536                2.60                    4.14
#   6       0 (1.4), 1 (1.1)           0.00192  1.15                 31.21                   32.36
# 1, 5 and 7 never completed a job: N = 0, an infinite bound. Equal data: p = 1/8 for everyone.
EXPECTED = {0: 6.97, 2: 20.96, 3: 26.64, 4: 4.14, 6: 32.36}


def test_ucb_cs_indexes_by_hand() -> None:
    indexes = SELECTORS.get("ucb_cs")({}).indexes(context(devices=a_history(), round_=5))
    assert np.isinf(indexes[[1, 5, 7]]).all()
    for device, value in EXPECTED.items():
        assert indexes[device] == pytest.approx(value / 8, abs=0.01)


def test_ucb_cs_explores_untrained_then_rarely_and_long_ago_trained_devices() -> None:
    assert select("ucb_cs", devices=a_history(), round_=5) == [1, 5, 7]
    # Six devices: 1, 5, 7, then 6 (32.4), 3 (26.6), 2 (21.0).
    assert select("ucb_cs", devices=a_history(), round_=5, k=0.75) == [1, 2, 3, 5, 6, 7]


def test_ucb_cs_without_exploration_ranks_the_discounted_mean_loss() -> None:
    # delta 0: L = 2.019 (2), 1.536 (4), 1.15 (6), 0.912 (0), 0.4 (3) after the unexplored 1, 5, 7.
    assert select("ucb_cs", {"delta": 0}, devices=a_history(), round_=5, k=0.75) == [1, 2, 4, 5, 6, 7]


def test_ucb_cs_scales_by_the_share_of_examples() -> None:
    # Device 3 holds ten times the data of the others: p L = 10 * 0.4 = 4 against 2.019 (2) and 1.536 (4).
    sizes = np.array([600, 600, 600, 6000, 600, 600, 600, 600])
    devices = replace(a_history(), data_sizes=sizes)
    assert select("ucb_cs", {"delta": 0}, devices=devices, round_=5, k=0.75) == [1, 2, 3, 4, 5, 7]


def test_ucb_cs_discount_weighs_recent_losses() -> None:
    # Without discount (gamma 1) device 6's mean loss is 1.25 and device 0's 1.05; device 0's recent 0.9 and
    # device 6's old 1.4 matter less with gamma 0.2 (1.15 and 0.912). A device whose loss rose lately wins
    # with a short memory: give 0 a last loss of 3.0 in round 4 (discounted mean 2.92, undiscounted 2.1).
    devices = replace(a_history(), loss_values=np.array([1.4, 2.5, 1.9, 1.1, 1.2, 0.4, 2.0, 1.7, 3.0, 1.5]))
    short = select("ucb_cs", {"delta": 0}, devices=devices, round_=5, available=np.arange(8), k=0.5)
    long = select("ucb_cs", {"delta": 0, "gamma": 1.0}, devices=devices, round_=5, available=np.arange(8), k=0.5)
    assert short == [0, 1, 5, 7]  # 2.92 (0) beats 2.019 (2)
    assert long == [1, 2, 5, 7]  # 2.25 (2) beats 2.1 (0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"gamma": 0}, "selection ucb_cs: gamma must be a number > 0"),
        ({"gamma": 1.5}, "selection ucb_cs: gamma must be at most 1"),
        ({"delta": -1}, "selection ucb_cs: delta must be a number >= 0"),
        ({"delta": "big"}, "selection ucb_cs: delta must be a number"),
    ],
)
def test_ucb_cs_parameter_errors_name_the_key(params: dict, message: str) -> None:
    with pytest.raises(StrategyParamsError, match=message):
        SELECTORS.get("ucb_cs")(params)


def test_ucb_cs_needs_the_loss_log() -> None:
    devices = replace(a_history(), loss_rounds=None)
    with pytest.raises(RuntimeError, match="needs the loss log"):
        SELECTORS.get("ucb_cs")({}).select_devices(context(devices=devices, round_=5))
