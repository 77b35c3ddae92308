"""OrchestratorStatus: the server side's shared state, read by the API and written by the loop."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from feles.config import SimulationSpec
from feles.orchestrator.jobs import JobQueue
from feles.orchestrator.notify import JobSignal
from feles.orchestrator.results import ResultsDocument
from feles.protocol import SimulationPhase, SimulationStatus, encode_tensors

#: Model versions kept for download: the current one and the one before (slow workers still on it).
KEPT_MODEL_VERSIONS = 2


class ModelStore:
    """Global model versions as safetensors bytes, encoded once and served to every worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes: dict[int, bytes] = {}
        self._tensors: dict[str, torch.Tensor] = {}
        self.version = -1

    def publish(self, weights: Mapping[str, torch.Tensor]) -> int:
        """Store weights as the next version and return its number."""
        encoded = encode_tensors(weights)
        with self._lock:
            self.version += 1
            self._bytes[self.version] = encoded
            self._tensors = {name: tensor.detach().clone() for name, tensor in weights.items()}
            for old in [v for v in self._bytes if v <= self.version - KEPT_MODEL_VERSIONS]:
                del self._bytes[old]
            return self.version

    def restore(self, weights: Mapping[str, torch.Tensor], version: int) -> None:
        """Publish checkpointed weights under the version they had."""
        with self._lock:
            self.version = version - 1
        self.publish(weights)

    def get(self, version: int) -> bytes | None:
        with self._lock:
            return self._bytes.get(version)

    def current(self) -> dict[str, torch.Tensor]:
        with self._lock:
            return dict(self._tensors)


@dataclass
class WorkerInfo:
    name: str
    registered_at: float
    last_seen: float


@dataclass
class Progress:
    """What `/v1/status` reports; updated by the loop after each round."""

    phase: SimulationPhase = SimulationPhase.PENDING
    message: str = ""
    stop_reason: str | None = None
    repetition: int = 0
    round: int = 0
    accuracy: float | None = None
    loss: float | None = None
    simulated_time: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None


@dataclass
class OrchestratorStatus:
    """The spec, the queue, the models, the workers and the progress of one run."""

    spec: SimulationSpec
    queue: JobQueue
    model_name: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    models: ModelStore = field(default_factory=ModelStore)
    progress: Progress = field(default_factory=Progress)
    workers: dict[str, WorkerInfo] = field(default_factory=dict)
    worker_timeout: float = 90.0
    results: ResultsDocument | None = None
    job_signal: JobSignal = field(default_factory=JobSignal)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.results is None:
            self.results = ResultsDocument(self.spec, self.run_id)

    def register_worker(self, name: str) -> str:
        worker_id = f"{name}-{uuid.uuid4().hex[:8]}"
        now = time.time()
        with self._lock:
            self.workers[worker_id] = WorkerInfo(name, now, now)
        return worker_id

    def touch_worker(self, worker_id: str) -> bool:
        """Record that a worker is alive; False when it is unknown (it must register again)."""
        with self._lock:
            info = self.workers.get(worker_id)
            if info is None:
                return False
            info.last_seen = time.time()
            return True

    def forget_worker(self, worker_id: str) -> bool:
        """Remove a worker that leaves; False when it was unknown."""
        with self._lock:
            return self.workers.pop(worker_id, None) is not None

    def live_workers(self) -> int:
        cutoff = time.time() - self.worker_timeout
        with self._lock:
            return sum(1 for info in self.workers.values() if info.last_seen >= cutoff)

    @property
    def finished(self) -> bool:
        return self.progress.phase in (SimulationPhase.SUCCEEDED, SimulationPhase.FAILED)

    def snapshot(self) -> SimulationStatus:
        counts = self.queue.counts()
        p = self.progress
        return SimulationStatus(
            phase=p.phase,
            message=p.message,
            stop_reason=p.stop_reason,
            repetition=p.repetition,
            repetitions=self.spec.simulation.repetitions,
            round=p.round,
            rounds=self.spec.simulation.num_rounds,
            accuracy=p.accuracy,
            loss=p.loss,
            simulated_time=p.simulated_time,
            workers=self.live_workers(),
            jobs_queued=counts.queued,
            jobs_leased=counts.leased,
            model_version=max(self.models.version, 0),
            started_at=p.started_at,
            finished_at=p.finished_at,
        )
