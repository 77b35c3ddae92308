"""A worker's state on the digits dataset without an orchestrator, and fit jobs for it (device tests)."""

from __future__ import annotations

from typing import Any

import torch

from feles.algorithms import build_client
from feles.config import SimulationSpec, deep_merge
from feles.models import build_model
from feles.protocol import Job, Phase
from feles.strategies import LOCAL_DATA_OPTIMIZERS
from feles.worker.state import WorkerState

DIGITS: dict[str, Any] = {
    "simulation": {"dataset": "digits", "model": "mlp", "seed": 7},
    "algorithms": {"learning_rate": 0.1, "momentum": 0.9},
    "devices": {"num": 20},
    "data": {"num_examples_mean": 70, "num_examples_var": 20},
}


def digits_state(overrides: dict[str, Any] | None = None, device: str = "cpu") -> WorkerState:
    """A worker state as registration builds it, for the digits spec with `overrides`."""
    spec = SimulationSpec.model_validate(deep_merge(DIGITS, overrides or {}))
    sections = {Phase.FIT: spec.algorithms.fit, Phase.EVAL: spec.algorithms.eval}
    local_data = {phase: LOCAL_DATA_OPTIMIZERS.get(s.data)(s.data_params) for phase, s in sections.items()}
    client = build_client(spec.algorithms)
    return WorkerState("w", "r", spec, spec.simulation.model, None, client, local_data, device=torch.device(device))


def initial_weights(state: WorkerState, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded initial weights of the state's model, as CPU tensors (as a worker decodes them)."""
    torch.manual_seed(seed)
    dataset = state.repetition_data(0).dataset
    model = build_model(state.model_name, dataset.input_shape, dataset.num_classes)
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def fit_job(device: int, seed: int, num_examples: int = 40, epochs: int = 2, batch_size: int = 16) -> Job:
    return Job(
        id=f"fit-{device}",
        run_id="r",
        repetition=0,
        round=0,
        phase=Phase.FIT,
        device=device,
        model_version=0,
        epochs=epochs,
        batch_size=batch_size,
        num_examples=num_examples,
        seed=seed,
        lease_seconds=10,
    )
