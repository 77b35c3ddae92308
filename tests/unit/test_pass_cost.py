"""The training pass cost the orchestrator learns from the workers' batches (feles.orchestrator.pass_cost)."""

from __future__ import annotations

import random

import pytest

from feles.orchestrator.batching import TRAINING_PASS_COST
from feles.orchestrator.pass_cost import HIGHEST_COST, PassCostEstimate


def test_batches_of_different_mixes_teach_the_cost_of_a_training_pass() -> None:
    estimate = PassCostEstimate()
    # Two workers a round, as in the light workload: one batch of test shards, eval jobs and two fit jobs, one of
    # eight fit jobs; a training pass costs 5.6 inference passes of 4.6 us, and each batch 3 ms besides.
    noise = random.Random(1)
    for _ in range(20):
        for training, inference in [(1_200, 16_000), (4_800, 0)]:
            seconds = 4.6e-6 * (5.6 * training + inference) + 0.003
            estimate.observe(training, inference, seconds * noise.uniform(0.95, 1.05))
    assert estimate.value == pytest.approx(5.6, rel=0.15)


def test_batches_of_one_mix_leave_the_guess_alone() -> None:
    # One worker takes a whole phase every round: the same mix each time, which cannot tell the costs apart.
    estimate = PassCostEstimate()
    for _ in range(10):
        estimate.observe(6_000, 16_000, 0.12)
        estimate.observe(12_000, 32_000, 0.24)
    assert estimate.value == TRAINING_PASS_COST
    fit_only = PassCostEstimate()  # batches of fit jobs alone: nothing to compare them with either
    for _ in range(10):
        fit_only.observe(6_000, 0, 0.1)
    assert fit_only.value == TRAINING_PASS_COST


def test_the_estimate_follows_a_change_and_ignores_nonsense() -> None:
    estimate = PassCostEstimate()
    for cost in (2.0, 8.0):  # another model's jobs, say: older batches weigh less and less
        for _ in range(60):
            estimate.observe(1_000, 0, cost * 1_000 * 1e-5)
            estimate.observe(0, 1_000, 1_000 * 1e-5)
        assert estimate.value == pytest.approx(cost, rel=0.01)
    estimate.observe(0, 0, 1.0)  # an empty batch
    estimate.observe(1_000, 1_000, 0.0)  # no time
    assert estimate.value == pytest.approx(8.0, rel=0.01)
    huge = PassCostEstimate()
    for _ in range(5):
        huge.observe(10, 0, 100.0)
        huge.observe(0, 10_000, 0.001)
    assert huge.value == HIGHEST_COST  # bounded, however slow a batch was
