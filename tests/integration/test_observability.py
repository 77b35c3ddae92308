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
    # A run far longer than the test: everything is read while orchestrator and worker are alive.
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 1000}})
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
    wait_for_status(port, lambda status: status["round"] >= 3)

    worker_samples = _samples(httpx.get(f"http://127.0.0.1:{worker_port}/metrics", timeout=10).text)
    worker_jobs = sum(value for (name, _), value in worker_samples.items() if name == "feles_worker_jobs_total")
    assert worker_jobs >= 3 * 6  # floor(0.3 * 20) fit jobs per round, at least
    assert worker_samples[("feles_worker_job_seconds_total", (("phase", "fit"),))] > 0
    # The only worker ran every test job: 4 shards of the 359 digits test examples per round, 3 rounds at least.
    assert worker_samples[("feles_worker_jobs_total", (("phase", "test"),))] >= 3 * 4

    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)  # no token needed
    assert metrics.status_code == 200
    samples = _samples(metrics.text)
    status = wait_for_status(port, lambda status: True)
    rounds = samples[("feles_rounds_completed_total", ())]
    assert 3 <= rounds <= status["round"]
    assert samples[("feles_phase", (("phase", "Running"),))] == 1
    assert samples[("feles_phase", (("phase", "Succeeded"),))] == 0
    completed = samples[("feles_jobs_completed_total", ())]
    assert completed >= worker_jobs - 1  # the worker counts a job once its result is accepted
    # Histogram and counter are read one after the other: a job may complete in between.
    assert abs(samples[("feles_job_round_trip_seconds_count", ())] - completed) <= 1
    assert samples[("feles_workers_registered", ())] == 1

    lines = [json.loads(line) for line in processes.log("orchestrator").splitlines() if line.startswith("{")]
    round_lines = [line for line in lines if "accuracy" in line]
    assert [line["round"] for line in round_lines][:3] == [1, 2, 3]
    assert all(line["level"] == "INFO" and line["logger"] == "feles.orchestrator" for line in round_lines)
    assert all(0 <= line["accuracy"] <= 1 and line["rounds"] == 1000 for line in round_lines)
    assert "integration-test-token" not in processes.log("orchestrator") + processes.log("w")
