"""The torch device a worker trains on: `--device auto|cpu|cuda`, resolved once when the worker starts."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

#: What `--device` (and $FELES_DEVICE) accept; auto is cuda when torch sees a GPU, else cpu.
DEVICE_CHOICES = ("auto", "cpu", "cuda")
#: cuBLAS reuses workspaces across streams unless told their size; a fixed one makes its kernels deterministic.
CUBLAS_WORKSPACE = ":4096:8"


class DeviceUnavailable(RuntimeError):
    """The worker was told to train on a device this machine does not have."""


def resolve_device(choice: str, cuda_available: bool | None = None) -> torch.device:
    """The device `choice` names on this machine; cuda where there is none is an error, not a silent cpu."""
    if choice not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {', '.join(DEVICE_CHOICES)}, got {choice!r}")
    has_cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if choice == "cuda" and not has_cuda:
        raise DeviceUnavailable(
            f"--device cuda: torch {torch.__version__} sees no CUDA GPU on this machine "
            "(no GPU, no driver, or a CPU-only torch build); use --device cpu or auto"
        )
    if choice == "cuda" or (choice == "auto" and has_cuda):
        return torch.device("cuda")
    return torch.device("cpu")


def prepare_device(device: torch.device) -> None:
    """On a GPU: deterministic kernels in full float32, so a job gives the same result on whichever worker runs it.

    Called before the first CUDA kernel (cuBLAS reads its variable when it starts). Ops without a deterministic
    CUDA kernel warn instead of failing (warn_only): they are named in the worker's log. TF32 (on by default for
    cuDNN convolutions) moved a local epoch's weights 3e-4 from the CPU's on an H200, against 1e-6 without it
    (bench/gpu_check.py --tf32): it is turned off. The CPU needs nothing.
    """
    if device.type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.benchmark = False  # autotuning may pick a different kernel per process
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def to_device(tensors: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The tensors on `device` (the same tensors where they already are)."""
    return {name: tensor.to(device) for name, tensor in tensors.items()}


def to_cpu(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached CPU copies: results leave the worker as CPU tensors, whatever device trained them."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in tensors.items()}
