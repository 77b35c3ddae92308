"""bench/gpu_check.py: its --cpu-only self-check passes here (jobs and whole runs), and without a GPU it exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"
QUICK = ["--jobs", "2", "--models", "mlp_small", "--dataset", "digits", "--rounds", "2"]


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=300)


def test_the_cpu_only_self_check_finds_no_difference_and_passes() -> None:
    done = _run("--cpu-only", *QUICK)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "largest differences, cpu vs cpu: weights 0.00e+00" in done.stdout
    assert "identical bits" in done.stdout
    assert "2 fit jobs stacked on cpu" in done.stdout
    assert "cpu with 1 and 2 workers: identical (every round, final model)" in done.stdout
    assert "cpu vs cpu, largest over the rounds: none" in done.stdout
    assert done.stdout.rstrip().endswith("result: PASS")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_it_exits_2_with_the_reason() -> None:
    done = _run(*QUICK)
    assert done.returncode == 2
    assert "no CUDA GPU" in done.stderr and "--cpu-only" in done.stderr
