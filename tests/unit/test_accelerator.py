"""The worker's torch device: --device auto|cpu|cuda, a clear error without a GPU, CPU results as before."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from feles.cli import app
from feles.local import LocalRun, LocalRunOptions
from feles.worker.accelerator import DeviceUnavailable, prepare_device, resolve_device
from feles.worker.client import Worker, WorkerOptions
from feles.worker.trainer import device_examples, run_job
from tests.unit.worker_states import digits_state, fit_job, initial_weights

NO_CUDA = not torch.cuda.is_available()


@pytest.mark.parametrize(
    ("choice", "has_cuda", "expected"),
    [
        ("auto", False, "cpu"),
        ("auto", True, "cuda"),
        ("cpu", True, "cpu"),
        ("cpu", False, "cpu"),
        ("cuda", True, "cuda"),
    ],
)
def test_the_choice_resolves_to_a_device(choice: str, has_cuda: bool, expected: str) -> None:
    assert resolve_device(choice, cuda_available=has_cuda).type == expected


def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(DeviceUnavailable, match=r"--device cuda: .* sees no CUDA GPU .* use --device cpu or auto"):
        resolve_device("cuda", cuda_available=False)


def test_an_unknown_device_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"auto, cpu, cuda.*'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a GPU")
def test_a_worker_asked_for_cuda_on_a_cpu_machine_fails_at_start_before_any_request() -> None:
    with pytest.raises(DeviceUnavailable):
        Worker(WorkerOptions(orchestrator="http://127.0.0.1:9", device="cuda"))


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a GPU")
@pytest.mark.parametrize("how", ["option", "environment"])
def test_feles_worker_with_cuda_on_a_cpu_machine_exits_2_with_the_reason(how: str) -> None:
    arguments = ["worker", "--orchestrator", "http://127.0.0.1:9", "--give-up-after", "0"]
    env = {"FELES_DEVICE": "cuda"} if how == "environment" else {}
    if how == "option":
        arguments += ["--device", "cuda"]
    result = CliRunner().invoke(app, arguments, env=env)
    assert result.exit_code == 2
    assert "sees no CUDA GPU" in result.output


def test_feles_worker_refuses_an_unknown_device_naming_the_option() -> None:
    result = CliRunner().invoke(app, ["worker", "--orchestrator", "http://127.0.0.1:9", "--device", "tpu"])
    assert result.exit_code == 2
    assert "--device" in result.output and "'tpu'" in result.output


def _worker_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fork: bool, **options: Any
) -> dict[str, list[str]]:
    """The command line of each worker process `feles run` with 2 workers and `options` would start."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"simulation: {{output_folder: {tmp_path / 'out'}}}\n")
    local = LocalRun(LocalRunOptions(spec, workers=2, **options))
    local.log_dir.mkdir(parents=True)
    spawned: dict[str, list[str]] = {}
    monkeypatch.setattr(local, "_spawn", lambda name, arguments, pass_fds=(): spawned.setdefault(name, arguments))
    monkeypatch.setattr("feles.local.can_fork", lambda: fork)
    local._start_workers("http://127.0.0.1:9")()  # those that start at once, then those that wait for an answer
    # Forked: one process starts both workers (--processes 2); otherwise a process each.
    assert len(spawned) == (1 if fork else 2)
    assert fork == ("--processes" in spawned["worker-0"])
    return spawned


@pytest.mark.parametrize("fork", [True, False])
@pytest.mark.parametrize("device", ["cpu", "cuda", "auto", None])
def test_feles_run_hands_its_device_to_every_worker(
    device: str | None, fork: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for arguments in _worker_arguments(tmp_path, monkeypatch, fork, device=device).values():
        if device is None:  # no option: each worker reads $FELES_DEVICE, else auto
            assert "--device" not in arguments
        else:
            assert arguments[arguments.index("--device") + 1] == device


@pytest.mark.parametrize("fork", [True, False])
@pytest.mark.parametrize("stack_jobs", [1, 16])
def test_feles_run_hands_stack_jobs_to_every_worker(
    stack_jobs: int, fork: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for arguments in _worker_arguments(tmp_path, monkeypatch, fork, stack_jobs=stack_jobs).values():
        if stack_jobs == 1:  # off: the workers train one by one, bit for bit
            assert "--stack-jobs" not in arguments
        else:
            assert arguments[arguments.index("--stack-jobs") + 1] == "16"


def test_feles_run_refuses_stack_jobs_below_1_naming_the_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", str(tmp_path / "spec.yaml"), "--stack-jobs", "0"])
    assert result.exit_code == 2
    assert "--stack-jobs" in result.output


def test_results_leave_the_worker_as_cpu_copies_that_later_jobs_do_not_change() -> None:
    state = digits_state()
    weights = initial_weights(state)
    first, tensors = run_job(state, fit_job(device=1, seed=3), weights)
    kept = {name: tensor.clone() for name, tensor in tensors.items()}
    run_job(state, fit_job(device=2, seed=4), weights)
    assert all(tensor.device.type == "cpu" for tensor in tensors.values())
    assert all(torch.equal(tensors[name], kept[name]) for name in kept)
    assert first.num_steps == 2 * 3  # 2 epochs of ceil(40 / 16) batches


def test_the_cpu_path_is_plain_minibatch_sgd_bit_for_bit() -> None:
    """The device plumbing adds nothing on the CPU: a textbook loop over the same batches gives the same bits."""
    state = digits_state()
    weights = initial_weights(state)
    job = fit_job(device=5, seed=9)
    _, tensors = run_job(state, job, weights)

    x, y = device_examples(state, job)
    model = state.module(0)
    model.load_state_dict(weights)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    generator = torch.Generator().manual_seed(job.seed)
    for _ in range(job.epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), job.batch_size):
            batch = order[start : start + job.batch_size]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensors[name], tensor), name


@pytest.mark.skipif(NO_CUDA, reason="needs a CUDA GPU")
def test_cuda_results_are_within_float_tolerance_of_the_cpu() -> None:
    weights = initial_weights(digits_state())
    cpu_result, cpu_tensors = run_job(digits_state(), fit_job(device=1, seed=3), weights)
    gpu_result, gpu_tensors = run_job(digits_state(device="cuda"), fit_job(device=1, seed=3), weights)
    assert gpu_result.loss == pytest.approx(cpu_result.loss, abs=1e-4)
    for name, tensor in cpu_tensors.items():
        assert gpu_tensors[name].device.type == "cpu"
        torch.testing.assert_close(gpu_tensors[name], tensor, rtol=1e-4, atol=1e-5)


def test_preparing_the_cpu_changes_no_global_torch_setting() -> None:
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark, os.environ.copy())
    prepare_device(torch.device("cpu"))
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark, os.environ.copy()) == before
