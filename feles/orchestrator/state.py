"""OrchestratorState: what the API serves and the loop writes, as separate parts of one run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from feles.config import SimulationSpec
from feles.orchestrator.jobs import JobQueue
from feles.orchestrator.model_store import ModelStore
from feles.orchestrator.notify import JobSignal
from feles.orchestrator.results import ResultsDocument
from feles.orchestrator.workers import WorkerRegistry
from feles.protocol import SimulationPhase, SimulationStatus


@dataclass
class Progress:
    """Where the run is; written by the loop after each round, read by `/v1/status`."""

    phase: SimulationPhase = SimulationPhase.PENDING
    message: str = ""
    stop_reason: str | None = None
    repetition: int = 0
    round: int = 0
    metric_value: float | None = None  # the test split's simulation.metric after the last round
    loss: float | None = None
    simulated_time: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    #: Written by the live page's data route: `feles run` waits for an open page to see the end, and only then.
    page_polled_at: float | None = None
    #: Set once a data answer showing the finished run has been sent to the page (after it went out: a poll asked
    #: for before the end, or answered while the orchestrator stopped, does not count).
    page_saw_end: bool = False

    @property
    def finished(self) -> bool:
        return self.phase in (SimulationPhase.SUCCEEDED, SimulationPhase.FAILED)


@dataclass
class OrchestratorState:
    """One run's parts: the spec, the job queue, the models, the workers, the progress and the results.

    The API reads and writes these parts; the loop gets only the ones it writes (see SimulationLoop).
    """

    spec: SimulationSpec
    queue: JobQueue
    model_name: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    models: ModelStore = field(default_factory=ModelStore)
    progress: Progress = field(default_factory=Progress)
    workers: WorkerRegistry = field(default_factory=WorkerRegistry)
    results: ResultsDocument | None = None
    job_signal: JobSignal = field(default_factory=JobSignal)

    def __post_init__(self) -> None:
        if self.results is None:
            self.results = ResultsDocument(self.spec, self.run_id)

    @property
    def finished(self) -> bool:
        return self.progress.finished

    def snapshot(self) -> SimulationStatus:
        """The `/v1/status` document."""
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
            metric=self.spec.simulation.metric,
            metric_value=p.metric_value,
            # Kept for readers of accuracy runs; an error (mae, mse) is never labelled an accuracy.
            accuracy=p.metric_value if self.spec.simulation.metric == "accuracy" else None,
            loss=p.loss,
            simulated_time=p.simulated_time,
            workers=self.workers.live(),
            jobs_queued=counts.queued,
            jobs_leased=counts.leased,
            model_version=max(self.models.version, 0),
            started_at=p.started_at,
            finished_at=p.finished_at,
            page_polled_at=p.page_polled_at,
            page_saw_end=p.page_saw_end,
        )
