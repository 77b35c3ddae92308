"""Model download and result upload throughput of the orchestrator's API over loopback.

A real orchestrator API (feles.orchestrator.api.create_app under uvicorn, bearer token on) runs in its own
process with a 1M- or 10M-parameter float32 model published in its ModelStore and fit jobs queued; the
client, like a worker, downloads GET /v1/models/{version} and uploads POST /v1/jobs/{id}/result (the
safetensors result of the same size, which the server decodes and checks) with httpx. MB/s = bytes /
seconds of the HTTP request (10^6 bytes per MB), median of several requests; the worker-side safetensors
encode and decode times are shown apart.

Usage: python bench/transfer.py [--parameters 1000000 10000000] [--requests 10]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import torch
from report import header, verdict

from feles.protocol import API_PREFIX, TENSOR_MEDIA_TYPE, WORKER_SECRET_HEADER, JobResult, decode_tensors, encode_result

TARGET_MB_PER_S = 200.0
TOKEN = "transfer-benchmark-token"
#: Parameters per weight matrix of the benchmark models (1000 x 1000).
LAYER = 1000


def model_of(parameters: int) -> dict[str, torch.Tensor]:
    """Float32 weight matrices of 1000 x 1000 (and a remainder vector) adding up to `parameters`."""
    generator = torch.Generator().manual_seed(0)
    layers = {f"layer{i}.weight": torch.randn(LAYER, LAYER, generator=generator) for i in range(parameters // LAYER**2)}
    if parameters % LAYER**2:
        layers["tail.bias"] = torch.randn(parameters % LAYER**2, generator=generator)
    return layers


def serve(parameters: int, jobs: int) -> None:
    """The orchestrator API with the model published and `jobs` fit jobs queued; prints its port."""
    import uvicorn

    from feles.config import parse_spec
    from feles.orchestrator.api import create_app
    from feles.orchestrator.jobs import JobQueue
    from feles.orchestrator.listener import bind_socket
    from feles.orchestrator.state import OrchestratorState
    from feles.protocol import Job, Phase

    state = OrchestratorState(spec=parse_spec({}), queue=JobQueue(lease_seconds=600.0), model_name="benchmark")
    state.models.publish(model_of(parameters))
    state.queue.submit(
        Job(
            id=f"job-{index}",
            run_id=state.run_id,
            repetition=0,
            round=0,
            phase=Phase.FIT,
            device=index,
            model_version=0,
            epochs=1,
            batch_size=1,
            num_examples=1,
            seed=0,
            lease_seconds=600.0,
        )
        for index in range(jobs)
    )
    sock = bind_socket("127.0.0.1", 0)
    print(sock.getsockname()[1], flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(state, TOKEN), log_level="warning", access_log=False))
    server.run(sockets=[sock])


def measure(parameters: int, requests: int) -> dict[str, float]:
    """Median MB/s of downloads and uploads against a fresh server process."""
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(parameters), "--jobs", str(requests + 1)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as http:
            _wait_ready(http)
            downloads, decodes = [], []
            for _ in range(requests + 1):  # the first request warms the connection up
                started = time.perf_counter()
                response = http.get(f"{API_PREFIX}/models/0")
                response.raise_for_status()
                downloads.append((len(response.content), time.perf_counter() - started))
                started = time.perf_counter()
                weights, _ = decode_tensors(response.content)
                decodes.append(time.perf_counter() - started)
            # A result counts only from the worker its job is leased to (with its own secret): register, lease.
            registered = http.post(f"{API_PREFIX}/workers", json={"name": "bench"}).json()
            worker, auth = registered["worker_id"], {WORKER_SECRET_HEADER: registered["worker_secret"]}
            encodes, uploads = [], []
            for _ in range(requests + 1):
                job = http.get(f"{API_PREFIX}/jobs/next", params={"worker": worker, "wait": 5}, headers=auth).json()
                result = JobResult(job_id=job["id"], worker_id=worker, loss=1.0, num_examples=1, num_steps=1,
                                   train_seconds=0.0)  # fmt: skip
                started = time.perf_counter()
                body = encode_result(result, weights)
                encodes.append(time.perf_counter() - started)
                started = time.perf_counter()
                response = http.post(
                    f"{API_PREFIX}/jobs/{job['id']}/result",
                    params={"worker": worker},
                    content=body,
                    headers={"Content-Type": TENSOR_MEDIA_TYPE, **auth},
                )
                response.raise_for_status()
                uploads.append((len(body), time.perf_counter() - started))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "bytes": downloads[-1][0],
        "download": statistics.median(size / seconds / 1e6 for size, seconds in downloads[1:]),
        "upload": statistics.median(size / seconds / 1e6 for size, seconds in uploads[1:]),
        "decode_ms": statistics.median(decodes[1:]) * 1e3,
        "encode_ms": statistics.median(encodes[1:]) * 1e3,
    }


def _wait_ready(http: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the benchmark server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parameters", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--requests", type=int, default=10, help="Timed requests of each kind per size.")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.jobs)
        return
    header("transfer: model download and result upload over loopback (HTTP, safetensors)")
    print(f"server: {shlex.join([sys.executable, 'bench/transfer.py', '--serve', 'PARAMETERS', '--jobs', 'N'])}")
    for parameters in args.parameters:
        figures = measure(parameters, args.requests)
        print(
            f"{parameters:>11,} parameters ({figures['bytes'] / 1e6:.1f} MB): download {figures['download']:,.0f} MB/s,"
            f" upload {figures['upload']:,.0f} MB/s (median of {args.requests}); worker-side decode"
            f" {figures['decode_ms']:.1f} ms, encode {figures['encode_ms']:.1f} ms"
        )
        for direction in ("download", "upload"):
            print("  " + verdict(f"{direction} {parameters:,}", figures[direction], TARGET_MB_PER_S, True, " MB/s"))


if __name__ == "__main__":
    main()
