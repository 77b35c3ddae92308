"""WorkerState: what a worker builds from the orchestrator's registration reply."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from feles.algorithms import ClientAlgorithm, build_client
from feles.config import SimulationSpec
from feles.data import (
    DataRequest,
    DevicePartitions,
    FederatedDataset,
    load_dataset,
    partition_devices,
    resolve_data_dir,
)
from feles.devices import DevicePopulation, federation_repetition
from feles.models import build_model
from feles.protocol import WORKER_SECRET_HEADER, Phase, RegisterReply
from feles.strategies import LOCAL_DATA_OPTIMIZERS, LocalDataOptimizer
from feles.worker.local_model import LocalModel

#: Global model versions a worker keeps decoded: the current one is what nearly every job asks for.
CACHED_MODEL_VERSIONS = 2


@dataclass
class RepetitionData:
    dataset: FederatedDataset
    partitions: DevicePartitions
    _test_inputs: torch.Tensor | None = None

    @property
    def test_inputs(self) -> torch.Tensor:
        """The test split's model inputs, standardised once: every round evaluates all of it, in shards."""
        if self._test_inputs is None:
            self._test_inputs = self.dataset.test.inputs()
        return self._test_inputs


def build_repetition_data(spec: SimulationSpec, repetition: int, data_dir: Path | None) -> RepetitionData:
    """The dataset and the device partitions of a repetition, from spec and seed alone (as on every worker)."""
    population = DevicePopulation.draw(spec, repetition)
    federation = federation_repetition(spec, repetition)  # as the orchestrator's loop draws it
    request = DataRequest(
        spec.simulation.seed, federation, population.data_sizes, data_dir, spec.simulation.dataset_params
    )
    dataset = load_dataset(spec.simulation.dataset, request)
    partitions = partition_devices(
        dataset,
        population.data_sizes,
        spec.data.non_iid_partitions,
        spec.data.mislabelling_percentage,
        spec.simulation.seed,
        federation,
    )
    return RepetitionData(dataset, partitions)


@dataclass
class WorkerState:
    """The run's spec turned into the objects jobs need, plus caches of data and models."""

    worker_id: str
    run_id: str
    spec: SimulationSpec
    model_name: str
    data_dir: Path | None
    client: ClientAlgorithm
    local_data: dict[Phase, LocalDataOptimizer]
    worker_secret: str = ""
    #: Where models and batches live while a job runs (feles.worker.accelerator.resolve_device).
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: Decoded global models by (repetition, version): a version number alone may name another repetition's model.
    models: OrderedDict[tuple[int, int], dict[str, torch.Tensor]] = field(default_factory=OrderedDict)
    _data: dict[int, RepetitionData] = field(default_factory=dict)
    _module: nn.Module | None = None
    _local: LocalModel | None = None

    @classmethod
    def from_reply(cls, reply: RegisterReply, data_dir: Path | None, device: torch.device | None = None) -> WorkerState:
        spec = reply.spec
        phases = {Phase.FIT: spec.algorithms.fit, Phase.EVAL: spec.algorithms.eval}
        local_data = {
            phase: LOCAL_DATA_OPTIMIZERS.get(section.data)(section.data_params) for phase, section in phases.items()
        }
        return cls(
            worker_id=reply.worker_id,
            worker_secret=reply.worker_secret,
            run_id=reply.run_id,
            spec=spec,
            model_name=reply.model_name,
            data_dir=resolve_data_dir(data_dir, spec.simulation.data_dir),
            client=build_client(spec.algorithms),
            local_data=local_data,
            device=device or torch.device("cpu"),
        )

    def repetition_data(self, repetition: int) -> RepetitionData:
        """The dataset and the device partitions of a repetition, built once from spec and seed."""
        if repetition not in self._data:
            self._data.clear()  # repetitions run in order: the previous one is done with
            self._data[repetition] = build_repetition_data(self.spec, repetition, self.data_dir)
        return self._data[repetition]

    def module(self, repetition: int) -> nn.Module:
        """One model instance reused by every job (weights are loaded per job)."""
        if self._module is None:
            dataset = self.repetition_data(repetition).dataset
            model = build_model(self.model_name, dataset.input_shape, dataset.num_classes)
            self._module = model.to(self.device)
        return self._module

    def local_model(self, repetition: int) -> LocalModel:
        """The module and its local optimizer, reused by every job (feles.worker.local_model)."""
        if self._local is None:
            self._local = LocalModel(self.module(repetition), self.spec.algorithms)
        return self._local

    @property
    def auth(self) -> dict[str, str]:
        """The header that identifies this worker on the routes that act as it."""
        return {WORKER_SECRET_HEADER: self.worker_secret}

    def cached_model(self, repetition: int, version: int) -> dict[str, torch.Tensor] | None:
        """The decoded global model of (repetition, version), if cached (the cache belongs to one run)."""
        return self.models.get((repetition, version))

    def cache_model(self, repetition: int, version: int, weights: dict[str, torch.Tensor]) -> None:
        self.models[(repetition, version)] = weights
        while len(self.models) > CACHED_MODEL_VERSIONS:
            self.models.popitem(last=False)
