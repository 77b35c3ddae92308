"""How many jobs one lease request gets: tiny jobs travel in batches, big ones one at a time.

The orchestrator alone decides (the worker only says how many it can take), and a job's result never
depends on the batch it came in: every job keeps its own lease, deadline and seed.

The rule, for a worker asking for up to `requested` jobs:

- at most MAX_BATCH_JOBS;
- results of one batch fit in BATCH_RESULT_BYTES, counting a fit job's result as RESULT_PART_FACTOR x the
  encoded model + RESULT_PART_SLACK bytes (a model of 2.6 kB batches 228 fit jobs, one of 400 kB 13 and one
  of 6 MB, the quickstart's CNN, one) and an evaluation's or a test shard's, which holds no tensor, as
  METADATA_RESULT_BYTES (when every result was counted as a fit result, a round's ten test shards and ten
  eval jobs of `mlp_small` needed two batches: a lease and a post more for each worker, every round);
- about a fair share of the work left (in inference passes over one example: an evaluation's examples,
  TRAINING_PASS_COST x epochs x examples for a fit job; the queue applies it, the first job always goes): the
  work waiting and the work the live workers hold unfinished, over the live workers, less what the asking
  one holds. A job joins the batch when at least half of it fits in what is left of the share (`joins_share`),
  so a batch ends as near its share as whole jobs allow: a job left over by both workers' shares ran as a
  batch of its own, a lease and a post more. Ten equal jobs and two idle workers make two batches of five; a
  round's test shards, eval jobs and the next round's fit jobs, queued together, split by their work, not
  their number; a worker that asks while the other is still busy takes only its part of what is left (a
  share of the waiting work over the idle workers alone let it take all of it and the busy one, done soon
  after, idled to the end);
- at most BATCH_TRAINING_PASSES training passes' work (at the training pass cost: a fixed bound in inference
  passes cut the first of two workers' share short once the cost was learnt above 3, and a job was left over):
  a worker that joins, or dies, in the middle of a phase finds, or leaves, little work in a single batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from feles.protocol import Phase

#: Most jobs handed out by one lease request (256 rather than 64: at 10,000 tiny jobs a round, a quarter of the
#: requests took 20 % less orchestrator CPU and ran 8 % more jobs a second, bench/throughput.py).
MAX_BATCH_JOBS = 256
#: Bytes the results of one batch may take together (the batch results body limit derives from it).
BATCH_RESULT_BYTES = 16 * 1024 * 1024
#: A result may hold the model's tensors and algorithm tensors of up to twice the model's size ...
RESULT_PART_FACTOR = 3
#: ... plus its metadata and the safetensors header.
RESULT_PART_SLACK = 64 * 1024
#: What the result of a job that returns no tensor (an eval job, a test shard) is counted as: its metadata.
METADATA_RESULT_BYTES = RESULT_PART_SLACK
#: Framing of a batch results body (8 bytes a part) and room to spare.
BATCH_SLACK_BYTES = 1024 * 1024
#: What training on an example costs in inference passes over it (forward, backward and step against a
#: forward pass at a larger batch: 3.75 for mlp_small and 2.2 for the quickstart's CNN at batch 32, 1 thread)
#: until the orchestrator has learnt it from the workers' batches (feles.orchestrator.pass_cost). Weighing
#: the fit jobs queued with a round's evaluation by it lets both workers end together: counted as one, the
#: first idle worker took every eval job and the second all ten fit jobs (75 ms of the other idle).
TRAINING_PASS_COST = 3
#: Most training example passes' work in one batch (in inference passes: x the training pass cost).
BATCH_TRAINING_PASSES = 8192
#: Most work in one batch at TRAINING_PASS_COST (inference passes).
BATCH_WORK = BATCH_TRAINING_PASSES * TRAINING_PASS_COST


def result_part_limit(model_bytes: int) -> int:
    """Largest result of one job inside a batch results body."""
    return RESULT_PART_FACTOR * model_bytes + RESULT_PART_SLACK


def job_work(phase: Phase, epochs: Sequence[int], examples: Sequence[int], training_pass_cost: float) -> list[int]:
    """Each job's work in inference passes over one example: epochs x examples, a fit job's x the training pass
    cost (TRAINING_PASS_COST, or what feles.orchestrator.pass_cost learnt)."""
    cost = training_pass_cost if phase is Phase.FIT else 1
    return [round(cost * e * n) for e, n in zip(epochs, examples, strict=True)]


def batch_body_limit(model_bytes: int) -> int:
    """Largest batch results body: the results a batch may hold (one fit job's, however large, or as many as
    fit in BATCH_RESULT_BYTES) and the framing."""
    return max(BATCH_RESULT_BYTES, result_part_limit(model_bytes)) + BATCH_SLACK_BYTES


@dataclass(frozen=True)
class ResultRoom:
    """Room for a batch's results: `total` bytes, each fit job's result counted as `fit_part` bytes."""

    total: int
    fit_part: int

    @classmethod
    def for_model(cls, model_bytes: int) -> ResultRoom:
        """The room of one batch results body for a model of `model_bytes` encoded bytes."""
        return cls(BATCH_RESULT_BYTES, result_part_limit(model_bytes))

    def part(self, phase: Phase) -> int:
        """The bytes a job of `phase` is counted for: fit results hold tensors, the others their metadata."""
        return self.fit_part if phase is Phase.FIT else METADATA_RESULT_BYTES


def joins_share(taken: int, work: int, share: int) -> bool:
    """Whether a job of `work` joins a batch that holds `taken` of its `share`: when at least half of it fits."""
    return 2 * (share - taken) >= work


@dataclass(frozen=True)
class WorkLeft:
    """What is left of the queued work when a worker asks: waiting, and held unfinished by each worker."""

    waiting: int
    held: Mapping[str, int]
    live_workers: int


def lease_limits(
    requested: int, worker: str, left: WorkLeft, training_pass_cost: float = TRAINING_PASS_COST
) -> tuple[int, int]:
    """The most jobs and the share of the work one lease request of `worker` gets (results' room aside:
    ResultRoom), the work at most BATCH_TRAINING_PASSES training passes' worth at `training_pass_cost`; the queue
    always hands out the first job, however large."""
    total = left.waiting + sum(left.held.values())
    fair_share = math.ceil(total / max(left.live_workers, 1)) - left.held.get(worker, 0)
    most_work = round(BATCH_TRAINING_PASSES * training_pass_cost)
    return max(1, min(requested, MAX_BATCH_JOBS)), max(1, min(most_work, fair_share))
