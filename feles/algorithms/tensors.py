"""Helpers for named tensor sets: float arithmetic in double precision and per-device state stores."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn


def parameter_names(model: nn.Module) -> list[str]:
    """Names of the trainable parameters (the state_dict also holds buffers, which no gradient reaches)."""
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


def with_prefix(prefix: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}{name}": tensor for name, tensor in tensors.items()}


def strip_prefix(prefix: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors whose names start with `prefix`, without it."""
    return {name.removeprefix(prefix): tensor for name, tensor in tensors.items() if name.startswith(prefix)}


def select_prefix(prefix: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors whose names start with `prefix`, names unchanged."""
    return {name: tensor for name, tensor in tensors.items() if name.startswith(prefix)}


def map_float_tensors(
    reference: Mapping[str, torch.Tensor], compute: Callable[[str, torch.Tensor], torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Per-tensor arithmetic in double precision, in `reference`'s name order.

    A floating-point tensor becomes `compute(name, tensor)` (a float64 result) cast back to the tensor's dtype; an
    integer tensor (a counter such as BatchNorm's num_batches_tracked) is copied from `reference` unchanged.
    """
    result: dict[str, torch.Tensor] = {}
    for name, tensor in reference.items():
        result[name] = compute(name, tensor).to(tensor.dtype) if tensor.is_floating_point() else tensor.clone()
    return result


#: Most float64 elements ordered_sum stacks at once: 128 KiB stay in the CPU's cache (measured at 8,000 updates of
#: 650 parameters: 64 MiB chunks took 245 ms, 8 MiB 100 ms, 128 KiB 16 ms, the loop 80 ms).
ORDERED_SUM_ELEMENTS = 16 * 1024
#: Fewer updates than this in a chunk (big tensors): the plain loop, whose per-call overhead no longer shows.
ORDERED_SUM_MIN_ROWS = 4


def ordered_sum(tensors: Sequence[torch.Tensor], scales: Sequence[float]) -> torch.Tensor:
    """sum_i scales[i] * tensors[i] in float64, added one at a time in order, from zero.

    Bit for bit the loop `total = zeros; for t, s in ...: total += t.to(float64) * s`, in a few torch calls
    instead of three per tensor (8,000 updates of 650 parameters: 16 ms instead of 80 ms). Each product is the
    same float64 product, and a cumulative sum along the first axis on the CPU adds the rows one after another
    into a single accumulator, so the additions happen in the same order (unlike torch.sum, which adds in
    pairs); a chunk's running total is added into the first row of the next chunk. tests/unit/test_fedavg.py
    checks it against the loop.
    """
    first = tensors[0]
    total = torch.zeros(first.shape, dtype=torch.float64, device=first.device)
    weights = torch.tensor(list(scales), dtype=torch.float64, device=first.device).view(-1, *([1] * first.dim()))
    rows = ORDERED_SUM_ELEMENTS // max(first.numel(), 1)
    # The sequential cumulative sum is the CPU kernel's; big tensors gain nothing from stacking.
    if first.device.type != "cpu" or rows < ORDERED_SUM_MIN_ROWS:
        # One float64 buffer for every product: a new one per update (`tensor.to(float64) * scale`, the same
        # values) was two allocations above malloc's mmap threshold, each paged in and out again.
        product = torch.empty_like(total)
        for tensor, scale in zip(tensors, scales, strict=True):
            product.copy_(tensor)
            product.mul_(scale)
            total += product
        return total
    for start in range(0, len(tensors), rows):
        chunk = torch.stack(list(tensors[start : start + rows])).to(torch.float64)
        chunk *= weights[start : start + rows]
        chunk[0] += total  # total + first row, as a cumulative sum from total would add them: no copy of the chunk
        total = chunk.cumsum(0)[-1]
    return total


def add_into(target: dict[str, torch.Tensor], delta: Mapping[str, torch.Tensor], scale: float = 1.0) -> None:
    """target[name] += scale * delta[name] in float64, keeping target's dtype; missing names start at zero."""
    for name, value in delta.items():
        current = target.get(name)
        base = torch.zeros_like(value, dtype=torch.float64) if current is None else current.to(torch.float64)
        dtype = value.dtype if current is None else current.dtype
        target[name] = (base + scale * value.to(torch.float64)).to(dtype)


class DeviceTensors:
    """Per-device named tensors kept by the orchestrator (control variates, FedDyn gradients)."""

    def __init__(self) -> None:
        self._state: dict[int, dict[str, torch.Tensor]] = {}

    def get(self, device: int) -> dict[str, torch.Tensor]:
        """The device's tensors; empty when the device never trained (its state is zero)."""
        return dict(self._state.get(device, {}))

    def set(self, device: int, tensors: Mapping[str, torch.Tensor]) -> None:
        self._state[device] = {name: tensor.detach().clone() for name, tensor in tensors.items()}

    def devices(self) -> Iterable[int]:
        return sorted(self._state)

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        """Names `<prefix><device>/<tensor name>`."""
        state = {}
        for device in self.devices():
            state.update({f"{prefix}{device}/{name}": tensor for name, tensor in self._state[device].items()})
        return state

    def load_state_dict(self, prefix: str, state: Mapping[str, torch.Tensor]) -> None:
        self._state = {}
        for key, tensor in strip_prefix(prefix, state).items():
            device, separator, name = key.partition("/")
            if not separator or not device.isdigit():
                raise ValueError(f"malformed per-device state name {prefix + key!r} (expected {prefix}<device>/<name>)")
            self._state.setdefault(int(device), {})[name] = tensor.detach().clone()


def check_known_keys(owner: str, state: Mapping[str, torch.Tensor], prefixes: Iterable[str]) -> None:
    """Raise ValueError naming the first state key that none of the prefixes claims."""
    prefixes = tuple(prefixes)
    for key in state:
        if not key.startswith(prefixes):
            raise ValueError(f"{owner}: unexpected server state {key!r} (known prefixes: {', '.join(prefixes)})")
