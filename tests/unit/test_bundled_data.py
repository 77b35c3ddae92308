"""Digits and diabetes read from scikit-learn's data files with numpy: the same numbers as its loaders, without
importing scikit-learn; its loaders still serve when a scikit-learn keeps the files elsewhere."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits

from feles.data import bundled, diabetes, digits
from feles.data.bundled import bundled_table


def _same(ours: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray]) -> bool:
    pairs = zip(ours, theirs, strict=True)
    return all(a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b) for a, b in pairs)


def test_the_tables_are_scikit_learns_bit_for_bit() -> None:
    assert _same(digits.digits_table(), load_digits(return_X_y=True))
    assert _same(diabetes.diabetes_table(), load_diabetes(return_X_y=True, scaled=False))
    pixels, labels = digits.digits_table()
    assert pixels.shape == (1797, 64) and pixels.max() == 16.0 and sorted(set(labels)) == list(range(10))


def test_without_the_files_scikit_learns_loaders_give_the_same_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = digits.digits_table(), diabetes.diabetes_table()
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        bundled.importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real_find_spec(name, *a)
    )
    assert bundled_table("digits.csv.gz", delimiter=",") is None
    assert _same(digits.digits_table(), expected[0])
    assert _same(diabetes.diabetes_table(), expected[1])


def test_a_file_scikit_learn_does_not_ship_is_none() -> None:
    assert bundled_table("no-such-table.csv.gz") is None


@pytest.mark.parametrize("dataset", ["digits", "diabetes"])
def test_loading_the_dataset_imports_neither_scikit_learn_nor_scipy(dataset: str) -> None:
    code = (
        "import sys\nimport numpy as np\nfrom feles.data.dataset import DataRequest, load_dataset\n"
        f"data = load_dataset({dataset!r}, DataRequest(1, 0, np.full(10, 20), None, {{}}))\n"
        "print(len(data.train.y) + len(data.test.y), sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(maxsplit=1) == [{"digits": "1797", "diabetes": "442"}[dataset], "[]\n"]
