"""Prometheus metrics of a worker, served on a small port of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, start_http_server


class WorkerMetrics:
    """Jobs done and seconds spent on them, by phase."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter("feles_worker_jobs", "Jobs run to completion.", ["phase"], registry=self.registry)
        self.seconds = Counter(
            "feles_worker_job_seconds", "Wall-clock seconds spent running jobs.", ["phase"], registry=self.registry
        )

    def record(self, phase: str, seconds: float) -> None:
        self.jobs.labels(phase).inc()
        self.seconds.labels(phase).inc(seconds)

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        """Serve /metrics on `port` (0 picks a free one) in a daemon thread; the port used."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return server.server_port
