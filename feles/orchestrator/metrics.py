"""Prometheus metrics of the orchestrator, read from its state at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from feles.orchestrator.state import OrchestratorState
from feles.protocol import SimulationPhase

#: Job round trips run from milliseconds (tiny models) to minutes (big models, slow workers).
ROUND_TRIP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
#: Jobs per lease request: 1 (big jobs, or the single-job route) up to the batch cap (256).
LEASE_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class OrchestratorCollector(Collector):
    """Gauges and counters computed from an OrchestratorState when Prometheus scrapes."""

    def __init__(self, state: OrchestratorState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state, progress = self.state, self.state.progress
        counts = state.queue.counts()
        info = InfoMetricFamily("feles_simulation", "The simulation this orchestrator runs.")
        info.add_metric(
            [],
            {
                "run_id": state.run_id,
                "dataset": state.spec.simulation.dataset,
                "algorithm": state.spec.algorithms.federated_algorithm,
            },
        )
        yield info
        phase = GaugeMetricFamily("feles_phase", "1 for the simulation's current phase.", labels=["phase"])
        for value in SimulationPhase:
            phase.add_metric([value.value], 1.0 if progress.phase is value else 0.0)
        yield phase
        yield CounterMetricFamily(
            "feles_rounds_completed", "Rounds completed, all repetitions together.", value=len(state.results.rounds)
        )
        yield GaugeMetricFamily("feles_repetition", "Current repetition (0-based).", value=progress.repetition)
        yield GaugeMetricFamily("feles_round", "Rounds completed in the current repetition.", value=progress.round)
        metric = state.spec.simulation.metric  # one gauge per metric: an mae is never exported as an accuracy
        for name, value, text in (
            (f"feles_test_{metric}", progress.metric_value, f"Test {metric} of the latest global model."),
            ("feles_test_loss", progress.loss, "Test loss of the latest global model."),
        ):
            if value is not None:
                yield GaugeMetricFamily(name, text, value=value)
        yield GaugeMetricFamily(
            "feles_simulated_seconds", "Simulated time of the current repetition.", value=progress.simulated_time
        )
        jobs = GaugeMetricFamily("feles_jobs", "Jobs of the current phase by state.", labels=["state"])
        jobs.add_metric(["queued"], counts.queued)
        jobs.add_metric(["leased"], counts.leased)
        jobs.add_metric(["done"], counts.done)
        yield jobs
        yield CounterMetricFamily("feles_jobs_completed", "Job results accepted.", value=counts.completed)
        yield CounterMetricFamily(
            "feles_jobs_reissued", "Jobs given to another worker (lease expired or worker left).", value=counts.reissued
        )
        yield GaugeMetricFamily("feles_workers", "Workers seen recently.", value=state.workers.live())
        yield GaugeMetricFamily("feles_workers_registered", "Workers registered.", value=len(state.workers))


class OrchestratorMetrics:
    """A registry of its own per orchestrator (several may live in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.round_trip = Histogram(
            "feles_job_round_trip_seconds",
            "Seconds from handing a job to a worker to accepting its result.",
            buckets=ROUND_TRIP_BUCKETS,
            registry=self.registry,
        )
        self.lease_batch = Histogram(
            "feles_lease_batch_jobs",
            "Jobs handed out per lease request (GET /v1/jobs/next: 1; GET /v1/jobs/batch: the batch).",
            buckets=LEASE_BATCH_BUCKETS,
            registry=self.registry,
        )

    def attach(self, state: OrchestratorState) -> None:
        """Report `state` from now on."""
        self.registry.register(OrchestratorCollector(state))

    def render(self) -> bytes:
        return generate_latest(self.registry)
