"""docs/plugins.md: its custom selector is short, imports by path and picks what it says; the other examples run."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from feles.algorithms import DeviceUpdate
from feles.strategies import LOCAL_DATA_OPTIMIZERS, SELECTORS, UPDATE_OPTIMIZERS, UpdateContext
from tests.unit.test_selection_common import context, population

DOC = Path(__file__).parents[2] / "docs" / "plugins.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def module_from(code: str, name: str) -> ModuleType:
    module = ModuleType(name)
    exec(compile(code, f"docs/plugins.md:{name}", "exec"), module.__dict__)  # the doc's own example code
    return module


@pytest.fixture
def my_selectors(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    code = next(block for block in python_blocks() if block.startswith("# my_selectors.py"))
    module = module_from(code, "my_selectors")
    monkeypatch.setitem(sys.modules, "my_selectors", module)
    return module


def test_the_custom_selector_is_under_30_lines(my_selectors: ModuleType) -> None:
    code = next(block for block in python_blocks() if block.startswith("# my_selectors.py"))
    assert len(code.strip().splitlines()) < 30


def test_the_custom_selector_loads_by_import_path_and_picks_the_slowest(my_selectors: ModuleType) -> None:
    selector = SELECTORS.get("my_selectors:SlowestFirst")({"skip": 1})
    # ips 50 (0), 60 (6), 80 (4), 90 (7), 100 (2): skip 0, then 6, 4, 7.
    assert selector.select_devices(context()).tolist() == [4, 6, 7]
    assert SELECTORS.get("my_selectors:SlowestFirst")({}).select_devices(context()).tolist() == [0, 4, 6]
    with pytest.raises(ValueError, match="unknown parameter"):
        SELECTORS.get("my_selectors:SlowestFirst")({"slip": 1})


def test_the_other_examples_run() -> None:
    blocks = [block for block in python_blocks() if not block.startswith("# my_selectors.py")]
    namespace: dict[str, object] = {}
    for block in blocks:
        namespace.update(module_from(textwrap.dedent(block), "example").__dict__)
    update_context = UpdateContext(
        0, 0, "fit", np.array([1, 3]), context().params, population(data_sizes=np.array([600, 400] * 4)), None
    )
    work = namespace["TwoEpochsForBigDevices"]({}).plan(update_context)
    assert work.epochs.tolist() == [1, 1] and work.num_examples.tolist() == [400, 400]
    assert namespace["FirstExamples"]({}).choose(10, 3, np.random.default_rng(0)).tolist() == [0, 1, 2]
    server = namespace["Median"].server({})
    updates = [DeviceUpdate(d, 1, 1, 0.0, {"w": torch.tensor([float(d * d)])}) for d in range(3)]
    assert server.aggregate({}, updates)["w"].item() == 1.0
    assert UPDATE_OPTIMIZERS and LOCAL_DATA_OPTIMIZERS  # the registries the doc names exist
