"""simulation.identical_repetitions: one federation for every repetition, round-level draws per repetition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from feles.config import SimulationSpec, parse_spec
from feles.devices import DevicePopulation, RoundConditions, draw_failures, federation_repetition
from feles.orchestrator.job_block import JobBlock
from feles.orchestrator.loop import RunParts, SimulationLoop
from feles.orchestrator.model_store import ModelStore
from feles.orchestrator.results import ResultsDocument
from feles.orchestrator.runner import JobRunner, Outcomes
from feles.orchestrator.state import Progress
from feles.worker.state import build_repetition_data


def make_spec(identical: bool, folder: Path | None = None) -> SimulationSpec:
    return parse_spec(
        {
            "simulation": {
                "dataset": "digits",
                "model": "mlp",
                "seed": 5,
                "repetitions": 3,
                "identical_repetitions": identical,
                "output_folder": str(folder or "output"),
            },
            "devices": {"num": 30, "p_fail": 0.3},
            "data": {"num_examples_mean": 40, "num_examples_var": 20, "non_iid_partitions": 0.5},
            "network": {"speed_var": 50_000},
        }
    )


def populations(spec: SimulationSpec) -> list[DevicePopulation]:
    return [DevicePopulation.draw(spec, repetition) for repetition in range(3)]


def test_identical_repetitions_share_the_population() -> None:
    first, *others = populations(make_spec(identical=True))
    for other in others:
        for name in ("ips", "data_sizes", "net_speed_mean", "net_speed_spread"):
            np.testing.assert_array_equal(getattr(other, name), getattr(first, name))
    first, second, _ = populations(make_spec(identical=False))
    assert not np.array_equal(first.ips, second.ips)


def test_identical_repetitions_share_the_data_partitions() -> None:
    spec = make_spec(identical=True)
    zero, two = build_repetition_data(spec, 0, None), build_repetition_data(spec, 2, None)
    for device in range(30):
        np.testing.assert_array_equal(zero.partitions.indices[device], two.partitions.indices[device])
        np.testing.assert_array_equal(zero.partitions.test_indices[device], two.partitions.test_indices[device])
    other = build_repetition_data(make_spec(identical=False), 2, None)
    assert not all(np.array_equal(a, b) for a, b in zip(zero.partitions.indices, other.partitions.indices, strict=True))


@pytest.mark.parametrize("identical", [True, False])
def test_round_level_draws_still_differ_per_repetition(identical: bool) -> None:
    spec = make_spec(identical)
    population = DevicePopulation.draw(spec, 0)
    zero, one = (RoundConditions.draw(spec, population, repetition, 0) for repetition in (0, 1))
    assert not np.array_equal(zero.available, one.available)
    assert not np.array_equal(zero.net_speed, one.net_speed)
    devices = np.arange(30)
    assert not np.array_equal(draw_failures(spec, 0, 0, devices), draw_failures(spec, 1, 0, devices))
    assert federation_repetition(spec, 2) == (0 if identical else 2)


class IdleRunner(JobRunner):
    """A runner that is never asked to run anything (only repetitions are started)."""

    lease_seconds = 10.0

    def submit(self, blocks: Sequence[JobBlock], payloads: Mapping[str, bytes]) -> None:  # pragma: no cover
        raise AssertionError("no job expected")

    def wait(self, blocks: Sequence[JobBlock]) -> None:  # pragma: no cover
        pass

    def take(self, blocks: Sequence[JobBlock]) -> Outcomes:  # pragma: no cover
        return Outcomes()

    def stop(self) -> None:
        pass


def initial_weights(spec: SimulationSpec, repetition: int) -> dict[str, torch.Tensor]:
    parts = RunParts(spec, "0" * 32, "mlp", IdleRunner(), ModelStore(), Progress(), ResultsDocument(spec, "0" * 32))
    return SimulationLoop(parts)._start_repetition(repetition).model.state_dict()


@pytest.mark.parametrize("identical", [True, False])
def test_initial_weights_are_repetition_zeros_only_with_identical_repetitions(identical: bool, tmp_path: Path) -> None:
    spec = make_spec(identical, tmp_path)
    zero, one = initial_weights(spec, 0), initial_weights(spec, 1)
    same = all(torch.equal(zero[name], one[name]) for name in zero)
    assert same is identical
