"""Stacked training vs one job at a time: seconds per tiny fit job on the CPU, and how far the results differ.

Each round trains N devices' jobs from one global model, as a worker would: one by one (ClientAlgorithm.train
with torch.optim.SGD, what `run_job` does) or all N stacked (feles.worker.stacked.train_stacked). The jobs are
Fashion-MNIST-shaped (1x28x28, 10 classes; random pixels: timing and agreement do not depend on them), 64
examples each, 1 epoch of batch 32 (2 steps), SGD 0.05 with momentum 0.9. The two sides alternate, each
repeated; the median is printed. Torch runs on one thread, as a worker does by default.

With `--device cuda` both sides train on the GPU (the worker's deterministic CUDA settings, the examples and
the models on the device; the batch order still drawn on the CPU), where the cost of a tiny job is its kernel
launches rather than its arithmetic.

Usage: python bench/stacked.py [--models mlp_small logreg] [--devices 10 50 100] [--repeat 3] [--examples 64]
                               [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from report import header

from feles.algorithms import ClientAlgorithm, LocalTask
from feles.models import build_model
from feles.worker.accelerator import DeviceUnavailable, prepare_device, resolve_device
from feles.worker.stacked import LocalRule, StackedTask, train_stacked

SHAPE = (1, 28, 28)
RULE = LocalRule(lr=0.05, momentum=0.9)
EPOCHS, BATCH = 1, 32

Weights = dict[str, torch.Tensor]


def jobs(count: int, examples: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(count)
    return [
        (
            torch.rand(examples, *SHAPE, generator=generator).to(device),
            torch.randint(0, 10, (examples,), generator=generator).to(device),
        )
        for _ in range(count)
    ]


def one_by_one(model: torch.nn.Module, weights: Weights, data: list) -> list[Weights]:
    client, results = ClientAlgorithm({}), []
    for seed, (x, y) in enumerate(data):
        model.load_state_dict(weights)
        optimizer = torch.optim.SGD(model.parameters(), lr=RULE.lr, momentum=RULE.momentum)
        generator = torch.Generator().manual_seed(seed)
        client.train(LocalTask(model, x, y, EPOCHS, BATCH, optimizer, generator, weights))
        results.append({name: tensor.detach().clone() for name, tensor in model.state_dict().items()})
    return results


def stacked(model: torch.nn.Module, weights: Weights, data: list) -> list[Weights]:
    tasks = [StackedTask(x, y, torch.Generator().manual_seed(seed)) for seed, (x, y) in enumerate(data)]
    return [outcome.weights for outcome in train_stacked(model, weights, tasks, EPOCHS, BATCH, RULE)]


Side = Callable[[torch.nn.Module, Weights, list], list[Weights]]


def timed(side: Side, model: torch.nn.Module, weights: Weights, data: list) -> tuple[float, list[Weights]]:
    cuda = next(model.parameters()).device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    results = side(model, weights, data)
    if cuda:  # kernels run asynchronously: the time is when the last one is done
        torch.cuda.synchronize()
    return time.perf_counter() - started, results


def largest_difference(a: list[Weights], b: list[Weights]) -> float:
    return max(float((x[name].cpu() - y[name].cpu()).abs().max()) for x, y in zip(a, b, strict=True) for name in x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp_small", "logreg"])
    parser.add_argument("--devices", nargs="+", type=int, default=[10, 50, 100])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where both sides train")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        device = resolve_device(args.device)
    except DeviceUnavailable as error:
        raise SystemExit(str(error)) from None
    prepare_device(device)
    header(f"stacked training vs one by one ({device}, 1 CPU thread)")
    print(f"jobs: {args.examples} examples, {EPOCHS} epoch of batch {BATCH}, SGD lr {RULE.lr} momentum {RULE.momentum}")
    print("| model | devices | one by one s/job | stacked s/job | speed-up | largest weight difference |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        torch.manual_seed(0)
        model = build_model(name, SHAPE, 10).to(device)
        weights = {key: value.clone() for key, value in model.state_dict().items()}
        stacked(model, weights, jobs(2, args.examples, device))  # warm-up: vmap's first call traces
        one_by_one(model, weights, jobs(2, args.examples, device))  # and the kernels' first launches
        for count in args.devices:
            data = jobs(count, args.examples, device)
            alone, together, difference = [], [], 0.0
            for _ in range(args.repeat):
                seconds, reference = timed(one_by_one, model, weights, data)
                alone.append(seconds)
                seconds, results = timed(stacked, model, weights, data)
                together.append(seconds)
                difference = max(difference, largest_difference(reference, results))
            a, b = statistics.median(alone) / count, statistics.median(together) / count
            print(f"| {name} | {count} | {a * 1000:.3f} ms | {b * 1000:.3f} ms | {a / b:.2f}x | {difference:.2e} |")


if __name__ == "__main__":
    main()
