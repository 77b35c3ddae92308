"""`feles run`: orchestrator + worker processes on loopback finish a real simulation."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feles.config import load_spec
from feles.data import DataRequest, load_dataset
from feles.devices import DevicePopulation
from feles.evaluation import evaluate
from feles.local import LocalRun, LocalRunError, LocalRunOptions
from feles.models import build_model
from feles.orchestrator.checkpoint import load_checkpoint
from feles.orchestrator.results import CSV_COLUMNS
from tests.integration.conftest import comparable_rounds, write_spec

pytestmark = pytest.mark.integration


def test_digits_simulation_learns_and_writes_json_and_csv(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 6, "repetitions": 2}})
    outcome = LocalRun(LocalRunOptions(spec, workers=2)).run()

    assert outcome.status.phase.value == "Succeeded"
    document = json.loads(outcome.results_path.read_text())
    assert document["status"] == "succeeded"
    assert document["spec"]["simulation"]["dataset"] == "digits"
    rounds = document["rounds"]
    assert [(row["repetition"], row["round"]) for row in rounds] == [(r, i) for r in range(2) for i in range(6)]
    # 10 classes: chance is 0.1; a few FedAvg rounds on digits get far above it.
    assert max(row["test_accuracy"] for row in rounds) > 0.5
    for row in rounds:
        # k is a fraction of the devices available in the round: floor(0.3 * available), at least 1.
        assert row["fit_selected"] == max(1, int(0.3 * row["devices_available"] + 1e-9))
        assert 0 <= row["fit_failed"] <= row["fit_selected"] <= row["devices_available"] <= 20
        assert row["round_time"] > 0 and row["energy"] > 0
    times = [row["simulated_time"] for row in rounds if row["repetition"] == 0]
    assert times == sorted(times)
    assert [summary["stop_reason"] for summary in document["repetitions"]] == ["RoundsCompleted"] * 2

    with outcome.results_path.with_suffix(".csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == CSV_COLUMNS
    assert len(table) == 12
    assert float(table[-1]["test_accuracy"]) == pytest.approx(rounds[-1]["test_accuracy"])


def test_same_results_with_1_2_and_4_workers(tmp_path: Path) -> None:
    results = []
    for workers in (1, 2, 4):
        folder = tmp_path / f"w{workers}"
        folder.mkdir()
        outcome = LocalRun(LocalRunOptions(write_spec(folder), workers=workers)).run()
        assert outcome.status.phase.value == "Succeeded"
        results.append(comparable_rounds(outcome.results_path))
    assert results[0] == results[1] == results[2]
    assert len(results[0]) == 4


def test_stacked_workers_learn_what_one_by_one_workers_learn_within_float_tolerance(tmp_path: Path) -> None:
    results = []
    for stack_jobs in (1, 8):
        folder = tmp_path / f"stack{stack_jobs}"
        folder.mkdir()
        # Devices of one size: their fit jobs are alike, so a worker's batch trains together.
        spec = write_spec(folder, {"simulation": {"num_rounds": 3}, "data": {"num_examples_var": 0}})
        outcome = LocalRun(LocalRunOptions(spec, workers=2, stack_jobs=stack_jobs)).run()
        assert outcome.status.phase.value == "Succeeded"
        results.append(comparable_rounds(outcome.results_path))
    one_by_one, stacked = results
    assert len(stacked) == len(one_by_one) == 3
    for mine, theirs in zip(stacked, one_by_one, strict=True):
        for key, value in theirs.items():
            if isinstance(value, float):
                assert mine[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
            else:
                assert mine[key] == value, key


def test_workers_forked_from_one_start_up_or_started_apart_give_the_same_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = []
    for fork in (True, False):
        monkeypatch.setattr("feles.local.can_fork", lambda fork=fork: fork)
        folder = tmp_path / f"fork-{fork}"
        folder.mkdir()
        outcome = LocalRun(LocalRunOptions(write_spec(folder, {"simulation": {"num_rounds": 2}}), workers=2)).run()
        assert outcome.status.phase.value == "Succeeded"
        logs = {path.name: path.read_text() for path in outcome.log_dir.glob("worker-*.log")}
        assert sorted(logs) == ["worker-0.log", "worker-1.log"]
        # Forked workers name themselves in their lines; separate processes are named by their --name alone.
        # A separately started worker may still be importing torch when a two-round run ends: its log is then
        # empty, so each log that has a registration must carry its own name, and one log at least has one.
        registered = []
        for index in (0, 1):
            tag = f"[worker-{index}]" if fork else ""
            text = logs[f"worker-{index}.log"]
            if "registered as" in text:
                assert f"feles.worker{tag}: registered as worker-{index}-" in text
                registered.append(index)
        assert registered, logs
        results.append(comparable_rounds(outcome.results_path))
    assert results[0] == results[1]


def test_sharded_test_evaluation_equals_evaluating_the_whole_split(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path, {"simulation": {"num_rounds": 2, "test_shard_size": 37}})
    outcome = LocalRun(LocalRunOptions(spec_path, workers=2)).run()
    last = json.loads(outcome.results_path.read_text())["rounds"][-1]

    # The final checkpoint holds the last round's global model: evaluate it here in one go.
    spec = load_spec(spec_path)
    checkpoint = load_checkpoint(spec.simulation.output_folder)
    assert checkpoint is not None and checkpoint.finished
    sizes = DevicePopulation.draw(spec, 0).data_sizes
    dataset = load_dataset("digits", DataRequest(spec.simulation.seed, 0, sizes, None, {}))
    model = build_model("mlp", dataset.input_shape, dataset.num_classes)
    model.load_state_dict(checkpoint.weights)
    whole = evaluate(model, dataset.test.inputs(), dataset.test.y)
    assert last["test_accuracy"] == whole.metric  # 10 shards of 37 and one of 26, combined exactly
    assert last["test_loss"] == pytest.approx(whole.loss, rel=1e-5)


def test_target_accuracy_stops_early(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 30, "stop_conds": {"metric": 0.3}}})
    outcome = LocalRun(LocalRunOptions(spec, workers=2)).run()
    document = json.loads(outcome.results_path.read_text())
    assert document["repetitions"][0]["stop_reason"] == "TargetAccuracyReached"
    assert len(document["rounds"]) < 30
    assert document["rounds"][-1]["test_accuracy"] >= 0.3
    assert all(row["test_accuracy"] < 0.3 for row in document["rounds"][:-1])


def test_cli_run_prints_summary_and_exits_zero(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 2}})
    done = subprocess.run(
        [sys.executable, "-m", "feles", "run", str(spec), "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stderr
    assert (tmp_path / "out" / "results.json").exists()
    assert (tmp_path / "out" / "logs" / "worker-0.log").exists()


def test_cli_run_fails_clearly_when_the_dataset_is_missing(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"simulation": {"dataset": "fashion_mnist", "model": "cnn", "num_rounds": 1}})
    done = subprocess.run(
        [sys.executable, "-m", "feles", "run", str(spec), "--data-dir", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "simulation failed" in done.stderr
    assert "apt-get install dataset-fashion-mnist" in done.stderr


def _descendants(pid: int) -> list[int]:
    """The processes below `pid`: its children, theirs, and so on."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _wait_for_a_round(results: Path, run: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Until `results` holds a round (the run writes it, with no round, as it starts)."""
    deadline = time.monotonic() + 120
    while not (results.exists() and json.loads(results.read_text())["rounds"]):
        assert time.monotonic() < deadline and run.poll() is None, "no round finished"
        time.sleep(0.2)


def test_ctrl_c_stops_every_process_and_keeps_the_results(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 500}})
    run = subprocess.Popen(
        [sys.executable, "-m", "feles", "run", str(spec), "--workers", "2"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test run in the background inherits an ignored SIGINT, which Python then leaves ignored: the run
        # went on to its 500th round (seen when the suite ran as a background job).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    results = tmp_path / "out" / "results.json"
    _wait_for_a_round(results, run)
    children = _descendants(run.pid)
    # The orchestrator and 2 workers: the first worker forked the second (feles worker --processes 2), which
    # hears of the stop from it.
    assert len(children) == 3
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert "interrupted" in stderr
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []
    assert json.loads(results.read_text())["rounds"], "rounds finished before Ctrl-C are kept"


FAILING_ORCHESTRATOR = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATUS = sys.argv[2].encode()


class Failing(BaseHTTPRequestHandler):
    # Up, but failing every request (but every second status request): what a bug in a route would look like.
    status_requests = 0

    def answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        is_status = self.command == "GET" and self.path.split("?")[0] == "/v1/status"
        Failing.status_requests += is_status
        ok = is_status and Failing.status_requests % 2 == 0
        self.send_response(200 if ok else 500)
        body = STATUS if ok else b"Internal Server Error"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = answer


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Failing).serve_forever()
"""


class RunAgainstAFailingOrchestrator(LocalRun):
    """feles run's workers and its following of the run, with an orchestrator that answers 500 to nearly all."""

    def _start_orchestrator(self) -> str:
        from feles.protocol import SimulationPhase, SimulationStatus

        status = SimulationStatus(phase=SimulationPhase.RUNNING, repetition=1, repetitions=1, round=1, rounds=5)
        script = self.log_dir / "failing_orchestrator.py"
        script.write_text(FAILING_ORCHESTRATOR)
        port = _free_port()
        self.processes["orchestrator"] = subprocess.Popen(
            [sys.executable, str(script), str(port), status.model_dump_json()]
        )
        return f"http://127.0.0.1:{port}"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_ends_with_an_error_when_the_orchestrator_keeps_failing(tmp_path: Path) -> None:
    # Before, workers retried a failing orchestrator forever, and so did feles run, which waited for them.
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 5}})
    run = RunAgainstAFailingOrchestrator(LocalRunOptions(spec, workers=2, give_up_after=2.0))
    started = time.monotonic()
    with pytest.raises(LocalRunError) as failed:
        run.run()
    message = str(failed.value)
    assert "every worker has exited" in message
    assert "unavailable for 2 s (HTTP 500)" in message, message
    assert f"the orchestrator's log: {tmp_path / 'out' / 'logs' / 'orchestrator.log'}" in message
    assert time.monotonic() - started < 60
    assert all(process.poll() is not None for process in run.processes.values()), "every process is stopped"


def test_killing_feles_run_stops_its_processes_too(tmp_path: Path) -> None:
    # SIGKILL (or the out-of-memory killer) gives feles run no chance to stop its children: they stop themselves.
    spec = write_spec(tmp_path, {"simulation": {"num_rounds": 500}})
    run = subprocess.Popen([sys.executable, "-m", "feles", "run", str(spec), "--workers", "2"], cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    results = tmp_path / "out" / "results.json"
    _wait_for_a_round(results, run)
    children = _descendants(run.pid)
    assert len(children) == 3
    run.kill()
    run.wait()
    deadline = time.monotonic() + 30
    while [pid for pid in children if _alive(pid)]:
        assert time.monotonic() < deadline, f"still running after feles run was killed: {children}"
        time.sleep(0.2)
    # The orchestrator stopped as on SIGTERM: it says the run was interrupted, and its rounds are kept.
    document = json.loads(results.read_text())
    assert document["status"] == "interrupted" and document["rounds"]


def _alive(pid: int) -> bool:
    """Whether `pid` runs: a zombie (exited, not yet reaped by its parent) counts as stopped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
