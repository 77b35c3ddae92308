"""Real orchestrator and worker processes on 127.0.0.1 for integration tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from feles.api_token import TOKEN_ENV
from feles.config import deep_merge

pytestmark = pytest.mark.integration

#: The API token every test process shares (feles run makes its own).
TOKEN = "integration-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

#: A digits simulation that learns in a few seconds on one core; its 359 test examples make 4 test jobs.
DIGITS_SPEC: dict[str, Any] = {
    "simulation": {"dataset": "digits", "model": "mlp", "num_rounds": 4, "seed": 7, "test_shard_size": 100},
    "algorithms": {
        "learning_rate": 0.1,
        "momentum": 0.9,
        "fit": {"params": {"k": 0.3, "epochs": 2, "batch_size": 16}},
        "eval": {"params": {"k": 0.2, "batch_size": 64}},
    },
    "devices": {"num": 20, "p_available": 0.8, "p_fail": 0.1},
    "data": {"num_examples_mean": 70, "num_examples_var": 20, "non_iid_partitions": 10.0},
}


def write_spec(folder: Path, overrides: dict[str, Any] | None = None, name: str = "spec.yaml") -> Path:
    """A digits spec writing its results into `folder`/out."""
    spec = deep_merge(DIGITS_SPEC, {"simulation": {"output_folder": str(folder / "out")}})
    spec = deep_merge(spec, overrides or {})
    path = folder / name
    path.write_text(yaml.safe_dump(spec))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def comparable_rounds(results_path: Path) -> list[dict[str, Any]]:
    """The round records without the wall-clock fields."""
    rounds = json.loads(results_path.read_text())["rounds"]
    return [{key: value for key, value in row.items() if key != "wall_time"} for row in rounds]


class Processes:
    """Starts `python -m feles ...` processes and kills whatever is left at the end of a test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *arguments: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("ab")
        environment = {**os.environ, TOKEN_ENV: TOKEN}
        process = subprocess.Popen(
            [sys.executable, "-m", "feles", *arguments], stdout=log, stderr=subprocess.STDOUT, env=environment
        )
        log.close()
        self.started.append(process)
        return process

    def orchestrator(self, spec: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
        return self.start(
            "orchestrator", "orchestrator", "--config", str(spec), "--host", "127.0.0.1", "--port", str(port), *extra
        )

    def worker(self, port: int, name: str = "w") -> subprocess.Popen[bytes]:
        return self.start(name, "worker", "--orchestrator", f"http://127.0.0.1:{port}", "--name", name, "--wait", "2")

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    owner = Processes(tmp_path)
    yield owner
    owner.stop_all()


def wait_for_status(port: int, predicate, timeout: float = 120.0) -> dict[str, Any]:
    """Poll /v1/status until `predicate(status)` holds; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=5, headers=AUTH).json()
            if predicate(last):
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"status condition not reached in {timeout} s; last status {last}")
