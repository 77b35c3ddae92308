"""Prometheus metrics of orchestrator and workers, and JSON log lines, from real processes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Processes, free_port, wait_for_status, write_spec

pytestmark = pytest.mark.integration


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_and_json_logs_follow_a_real_run(tmp_path: Path, processes: Processes) -> None:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 3}})
    port, worker_port = free_port(), free_port()
    processes.orchestrator(spec, port, "--log-format", "json")
    processes.start(
        "w",
        "worker",
        "--orchestrator",
        f"http://127.0.0.1:{port}",
        "--metrics-port",
        str(worker_port),
        "--log-format",
        "json",
    )
    wait_for_status(port, lambda status: status["round"] >= 1)
    # Read the worker's metrics while it lives: it exits once the simulation is over.
    worker_samples = _samples(httpx.get(f"http://127.0.0.1:{worker_port}/metrics", timeout=10).text)
    worker_jobs = sum(value for (name, _), value in worker_samples.items() if name == "feles_worker_jobs_total")
    assert worker_jobs >= 6  # floor(0.3 * 20) fit jobs of round 0, at least
    assert worker_samples[("feles_worker_job_seconds_total", (("phase", "fit"),))] > 0
    final = wait_for_status(port, lambda status: status["phase"] == "Succeeded")

    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)  # no token needed
    assert metrics.status_code == 200
    samples = _samples(metrics.text)
    assert samples[("feles_rounds_completed_total", ())] == 3
    assert samples[("feles_phase", (("phase", "Succeeded"),))] == 1
    assert samples[("feles_test_accuracy", ())] == pytest.approx(final["accuracy"])
    completed = samples[("feles_jobs_completed_total", ())]
    assert completed > 0
    assert samples[("feles_job_round_trip_seconds_count", ())] == completed
    assert samples[("feles_workers_registered", ())] == 1

    lines = [json.loads(line) for line in processes.log("orchestrator").splitlines() if line.startswith("{")]
    rounds = [line for line in lines if "accuracy" in line]
    assert [line["round"] for line in rounds] == [1, 2, 3]
    assert all(line["level"] == "INFO" and line["logger"] == "feles.orchestrator" for line in rounds)
    assert rounds[-1]["accuracy"] == pytest.approx(final["accuracy"])
    assert "integration-test-token" not in processes.log("orchestrator") + processes.log("w")
