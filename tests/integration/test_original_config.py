"""`feles validate` and `feles run` on configs written for the original FELES (tests/data/original/*.yml).

Each test copies the configs into a fresh working directory, as the original's users ran them from its
repository root: config_1.yml's import names config_2.yml relative to the working directory.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from feles.config import load_spec

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ORIGINAL = Path("tests/data/original")


def working_directory(tmp_path: Path) -> Path:
    shutil.copytree(REPO / ORIGINAL, tmp_path / ORIGINAL)
    return tmp_path


def feles(cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feles", *arguments], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def results(cwd: Path, folder: str, name: str) -> dict[str, Any]:
    return json.loads((cwd / folder / name).read_text())


def test_the_config_1_and_2_pair_validates_and_runs_to_completion(tmp_path: Path) -> None:
    cwd = working_directory(tmp_path)
    config = str(ORIGINAL / "config_1.yml")
    checked = feles(cwd, "validate", config)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines()[-1] == f"{config}: valid (fashion_mnist, fedavg, 6 devices, 2 rounds)"

    done = feles(cwd, "run", config, "--workers", "2")
    assert done.returncode == 0, done.stderr
    translated = Path("output/original-pair/config_1.feles.yaml")
    assert f"{config}: a config written for the original FELES, translated into {translated}" in done.stderr
    drawn = re.search(r"warning: simulation\.seed: none -> drew seed (\d+)", done.stderr)
    assert drawn is not None, done.stderr
    for key in ("simulation.tf_verbosity", "simulation.num_processes", "devices.adversary_num"):
        assert f"warning: {key}: ignored: " in done.stderr
    assert "after 2 rounds (RoundsCompleted)" in done.stderr

    document = results(cwd, "output/original-pair", "best_net_speed.json")
    spec = document["spec"]
    assert spec["simulation"]["seed"] == int(drawn.group(1))  # the seed actually used is recorded
    assert (spec["simulation"]["dataset"], spec["simulation"]["model"]) == ("fashion_mnist", "mlp_small")
    assert spec["simulation"]["stop_conds"]["target"] == "eval"
    assert spec["simulation"]["identical_repetitions"] is False  # seed none: the original re-seeded nothing
    assert spec["devices"]["energy_failures"] is False
    assert (spec["algorithms"]["fit"]["params"]["k"], spec["algorithms"]["eval"]["params"]["k"]) == (0.5, 0.8)
    assert [row["round"] for row in document["rounds"]] == [0, 1]
    # k of the available devices, as the original: floor(0.5 x available), at least 1 (the seed is fresh:
    # availability varies run to run).
    assert all(
        row["fit_selected"] == min(row["devices_available"], max(1, row["devices_available"] // 2))
        for row in document["rounds"]
    ), document["rounds"]
    # The translation written beside the results is the spec the run read.
    assert load_spec(cwd / translated).model_dump(mode="json") == spec


def test_the_feddyn_use_case_runs_with_feddyns_own_aggregation(tmp_path: Path) -> None:
    cwd = working_directory(tmp_path)
    done = feles(cwd, "run", str(ORIGINAL / "use_case.yml"), "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert "warning: algorithms.fit.aggregation: 'fedavg' ignored: the original's FedDyn never reads it" in done.stderr
    spec = results(cwd, "output/original-use-case", "feddyn_use_case.json")["spec"]
    assert spec["algorithms"]["federated_algorithm"] == "feddyn"
    assert spec["algorithms"]["fit"]["aggregation"] is None
    assert spec["algorithms"]["fit"]["selection"] == "ucb_cs"


def test_the_regression_use_case_validates_and_runs_on_the_diabetes_stand_in(tmp_path: Path) -> None:
    """Needs the `diabetes` dataset and `regression_mlp` model (merged from the branch that adds them)."""
    cwd = working_directory(tmp_path)
    config = str(ORIGINAL / "regression.yml")
    checked = feles(cwd, "validate", config)
    assert checked.returncode == 0, checked.stderr
    assert "warning: simulation.model_name: 'boston_housing': Boston housing is not available offline" in (
        checked.stdout
    )
    done = feles(cwd, "run", config, "--workers", "1")
    assert done.returncode == 0, done.stderr
    document = results(cwd, "output/original-regression", "regression.json")
    spec = document["spec"]
    assert (spec["simulation"]["dataset"], spec["simulation"]["model"]) == ("diabetes", "regression_mlp")
    assert (spec["simulation"]["metric"], spec["algorithms"]["optimizer"]) == ("mae", "rmsprop")
    assert 1 <= len(document["rounds"]) <= 2
