"""A block of jobs: the jobs of one phase of a round as columns, the fields they share held once.

At 100,000 devices a round queues ~10,000 jobs; as Job objects they cost the orchestrator ~1.8 us each to build
and ~1.3 us each to serialize for the lease routes. A block builds none: it renders the JSON that a JobBatch of
its jobs dumps, byte for byte, straight from its columns, and makes a Job only where one is asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import overload

from pydantic_core import to_json

from feles.protocol import ExampleRange, Job, JobTerms

#: The fields every job of a block shares with its template; the other fields are the block's columns.
SHARED_FIELDS = ("run_id", "repetition", "round", "phase", "model_version", "lease_seconds")
#: What a JSON string cannot hold unescaped: ids free of these are written between quotes as they are.
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


@dataclass(frozen=True, eq=False)
class JobBlock(Sequence[Job]):
    """Jobs sharing the template's SHARED_FIELDS, in queue order; position i is the i-th job of every column."""

    template: Job
    ids: list[str]
    devices: list[int | None]
    #: (start, stop) of the test examples, test jobs only.
    test_examples: list[tuple[int, int] | None]
    epochs: list[int]
    batch_sizes: list[int]
    num_examples: list[int]
    seeds: list[int]
    #: Positions of the jobs whose algorithm tensors wait at /v1/jobs/{id}/tensors.
    has_tensors: frozenset[int] = field(default=frozenset())

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, position: int) -> Job: ...

    @overload
    def __getitem__(self, position: slice) -> list[Job]: ...

    def __getitem__(self, position: int | slice) -> Job | list[Job]:
        if isinstance(position, slice):
            return [self.job(i) for i in range(len(self))[position]]
        if not -len(self) <= position < len(self):
            raise IndexError(f"job position {position} out of range for a block of {len(self)}")
        return self.job(position % len(self))

    def __iter__(self) -> Iterator[Job]:
        return (self.job(i) for i in range(len(self)))

    def job(self, i: int) -> Job:
        """The Job at position i (made on each call: the block keeps columns, not jobs)."""
        examples = self.test_examples[i]
        return self._copy(
            {
                "id": self.ids[i],
                "device": self.devices[i],
                "test_examples": None if examples is None else ExampleRange(start=examples[0], stop=examples[1]),
                "epochs": self.epochs[i],
                "batch_size": self.batch_sizes[i],
                "num_examples": self.num_examples[i],
                "seed": self.seeds[i],
                "has_tensors": i in self.has_tensors,
            }
        )

    def terms(self, i: int) -> JobTerms:
        """What the result of the job at position i is checked against (cheaper than the Job: one per result)."""
        examples = self.test_examples[i]
        test_examples = None if examples is None else ExampleRange(start=examples[0], stop=examples[1])
        return JobTerms(self.template.phase, self.num_examples[i], test_examples)

    def with_tensors(self, positions: Iterable[int]) -> JobBlock:
        """The same jobs with has_tensors set at `positions`."""
        return replace(self, has_tensors=frozenset(positions))

    def json_range(self, start: int, stop: int) -> str:
        """The jobs at positions [start, stop) as JSON objects joined by commas, as pydantic dumps each."""
        head, middle, tail = self._shared_json
        ids, has_tensors = self._ids_json, self.has_tensors
        columns = (self.devices, self.test_examples, self.epochs, self.batch_sizes, self.num_examples, self.seeds)
        rows = zip(range(start, stop), *(column[start:stop] for column in columns), strict=True)
        return ",".join(
            [
                f'{{"id":{ids(i)},{head},"device":{"null" if d is None else d},'
                f'"test_examples":{"null" if t is None else _range_json(t)},{middle},'
                f'"epochs":{e},"batch_size":{b},"num_examples":{n},"seed":{s},'
                f'"has_tensors":{"true" if i in has_tensors else "false"},{tail}}}'
                for i, d, t, e, b, n, s in rows
            ]
        )

    @cached_property
    def _shared_json(self) -> tuple[str, str, str]:
        """The JSON of the shared fields as they sit between the columns: pydantic's own rendering of them."""

        def fields(*names: str) -> str:
            return self.template.model_dump_json(include=set(names))[1:-1]

        return fields("run_id", "repetition", "round", "phase"), fields("model_version"), fields("lease_seconds")

    @cached_property
    def _ids_json(self) -> Callable[[int], str]:
        ids = self.ids
        if _NEEDS_ESCAPE.search("".join(ids)):
            return lambda i: to_json(ids[i]).decode()
        return lambda i: f'"{ids[i]}"'

    @cached_property
    def _copy(self) -> Callable[[dict[str, object]], Job]:
        return template_copier(self.template)


def template_copier(template: Job) -> Callable[[dict[str, object]], Job]:
    """A function that copies `template` with some fields replaced: what `template.model_copy(update=...)` gives,
    without its generic copy machinery (0.8 us a job instead of ~2 us).

    The values are the loop's own (like model_construct's); every field counts as set, as in a template that
    model_construct built.
    """
    fields, fields_set = template.__dict__, frozenset(template.model_fields_set)
    new, set_slot = Job.__new__, object.__setattr__

    def copy(values: dict[str, object]) -> Job:
        job = new(Job)
        state = fields.copy()
        state.update(values)
        set_slot(job, "__dict__", state)
        set_slot(job, "__pydantic_fields_set__", set(fields_set))
        set_slot(job, "__pydantic_extra__", None)
        set_slot(job, "__pydantic_private__", None)
        return job

    return copy


def blocks_of(jobs: Iterable[Job]) -> list[JobBlock]:
    """Jobs built one by one, as blocks: consecutive jobs that share SHARED_FIELDS go in one block."""
    blocks: list[JobBlock] = []
    group: list[Job] = []
    for job in jobs:
        if group and any(getattr(job, name) != getattr(group[0], name) for name in SHARED_FIELDS):
            blocks.append(_block_of(group))
            group = []
        group.append(job)
    if group:
        blocks.append(_block_of(group))
    return blocks


def _block_of(jobs: Sequence[Job]) -> JobBlock:
    template = jobs[0].model_copy(update={"id": "", "device": None, "test_examples": None, "has_tensors": False})
    return JobBlock(
        template,
        ids=[job.id for job in jobs],
        devices=[job.device for job in jobs],
        test_examples=[None if r is None else (r.start, r.stop) for r in (job.test_examples for job in jobs)],
        epochs=[job.epochs for job in jobs],
        batch_sizes=[job.batch_size for job in jobs],
        num_examples=[job.num_examples for job in jobs],
        seeds=[job.seed for job in jobs],
        has_tensors=frozenset(i for i, job in enumerate(jobs) if job.has_tensors),
    )


def _range_json(examples: tuple[int, int]) -> str:
    return f'{{"start":{examples[0]},"stop":{examples[1]}}}'


def batch_json(parts: Iterable[str]) -> str:
    """A JobBatch document of jobs already rendered as JSON objects (JobBlock.json_range)."""
    return '{"jobs":[' + ",".join(parts) + "]}"
