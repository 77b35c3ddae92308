"""Nothing is read before authentication (issue 12.4): large bodies without the token, for unknown routes, or
beyond the model-derived result limit do not grow the orchestrator's memory. Measured on a real process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import AUTH, Processes, free_port, wait_for_status, write_spec

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
#: Each body is this large: before the fix, the orchestrator buffered every one of them (up to 512 MiB).
BODY_MIB = 96
#: Allowed growth of the orchestrator's peak resident memory over all the requests.
SLACK_MIB = 8


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def _body() -> Iterator[bytes]:
    chunk = b"\0" * MIB
    for _ in range(BODY_MIB):  # streamed: no Content-Length to refuse it by
        yield chunk


def _send(url: str, headers: dict[str, str]) -> int | None:
    """POST a large streamed body; the status code, or None when the server closed the connection first."""
    try:
        return httpx.post(url, content=_body(), headers=headers, timeout=30).status_code
    except httpx.TransportError:
        return None


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to measure memory")
def test_large_bodies_are_refused_before_they_are_read(tmp_path: Path, processes: Processes) -> None:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 1}})
    port = free_port()
    orchestrator = processes.orchestrator(spec, port)
    wait_for_status(port, lambda status: status["jobs_queued"] > 0)
    base = f"http://127.0.0.1:{port}"
    before = _peak_rss_mib(orchestrator.pid)

    answers = []
    for _ in range(3):
        answers.append(_send(f"{base}/v1/jobs/x/result", {}))  # no token
        answers.append(_send(f"{base}/v1/jobs/x/result", {"Authorization": "Bearer wrong"}))
        answers.append(_send(f"{base}/v1/nothing/here/result", AUTH))  # token, unknown route
        answers.append(_send(f"{base}/v1/jobs/x/result?worker=w", AUTH))  # token, far beyond the result limit

    grown = _peak_rss_mib(orchestrator.pid) - before
    assert grown < SLACK_MIB, f"peak RSS grew by {grown:.1f} MiB over {len(answers)} bodies of {BODY_MIB} MiB"
    assert set(answers) <= {401, 404, 413, None}, answers
    assert 401 in answers and 413 in answers
    # The orchestrator still serves.
    assert httpx.get(f"{base}/v1/status", headers=AUTH, timeout=10).status_code == 200


def test_the_result_limit_follows_the_model_size(tmp_path: Path, processes: Processes) -> None:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 1}})
    port = free_port()
    processes.orchestrator(spec, port)
    wait_for_status(port, lambda status: status["jobs_queued"] > 0)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=30) as http:
        model = len(http.get("/v1/models/0").content)
        limit = 3 * model + MIB
        too_large = http.post(
            "/v1/jobs/x/result",
            params={"worker": "w"},
            content=b"\0" * (limit + 1),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert too_large.status_code == 413 and str(limit) in too_large.text
        within = http.post("/v1/jobs/x/result", params={"worker": "w"}, content=b"\0" * 1000)
        assert within.status_code == 403  # read, then refused: no worker w
        assert http.post("/v1/nothing/here/result", content=b"\0" * 1000).status_code == 404
        assert http.post("/v1/workers/x/result", content=b"\0" * 1000).status_code == 404
