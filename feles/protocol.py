"""Wire models shared by orchestrator and worker, and the tensor codec (safetensors bytes)."""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from safetensors import SafetensorError

from feles.config import SimulationSpec

if TYPE_CHECKING:
    # Imported where tensors are handled: the wire models alone (`feles run`'s parent) need no torch (~1 s).
    import torch

API_PREFIX = "/v1"
TENSOR_MEDIA_TYPE = "application/octet-stream"
RESULT_METADATA_KEY = "feles.result"
#: Prefix of algorithm tensors (control variates, ...) in a result, beside the model's own tensors.
EXTRA_PREFIX = "extra:"
#: Header carrying a worker's own secret (RegisterReply.worker_secret).
WORKER_SECRET_HEADER = "X-Feles-Worker-Secret"
#: A fit update farther from the global model than this factor times (||global|| + 1), in the L2 norm over all
#: floating-point tensors, is absurd: no training step of a sane model moves that far; it is refused as malformed.
MAX_UPDATE_DISTANCE_RATIO = 1e4
#: Models with fewer floating-point elements than this have a batch's updates measured stacked (update_distances).
STACKED_DISTANCE_ELEMENTS = 16_384


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Phase(StrEnum):
    """What a job does: train a device, evaluate a device, or evaluate a shard of the test split."""

    FIT = "fit"
    EVAL = "eval"
    TEST = "test"


class RegisterRequest(WireModel):
    name: str = Field(default="worker", min_length=1, max_length=200, description="Free-form worker name.")


class RegisterReply(WireModel):
    """The WorkerState init information: everything a worker needs to run jobs."""

    worker_id: str
    worker_secret: str = Field(
        description="This worker's own secret: sent in the X-Feles-Worker-Secret header on every route that acts "
        "as this worker (next job, heartbeat, result, leave)."
    )
    spec: SimulationSpec
    run_id: str = Field(description="Changes when the orchestrator starts a new run; workers re-register.")
    model_name: str
    lease_seconds: float


class ExampleRange(WireModel):
    """The examples [start, stop) of a split."""

    start: int = Field(ge=0)
    stop: int = Field(gt=0)

    @model_validator(mode="after")
    def _not_empty(self) -> ExampleRange:
        if self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be greater than start ({self.start})")
        return self


class Job(WireModel):
    """One device's computation in one phase of one round, or one shard of the round's test evaluation."""

    id: str
    run_id: str
    repetition: int = Field(ge=0)
    round: int = Field(ge=0)
    phase: Phase
    device: int | None = Field(default=None, ge=0, description="The simulated device; null for test jobs.")
    test_examples: ExampleRange | None = Field(
        default=None, description="Test jobs only: the examples of the test split to evaluate the model on."
    )
    model_version: int = Field(ge=0)
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    num_examples: int = Field(ge=1)
    seed: int = Field(ge=0, description="Seed of this job's local randomness (data order, dropout).")
    has_tensors: bool = Field(default=False, description="Algorithm tensors wait at /v1/jobs/{id}/tensors.")
    lease_seconds: float = Field(gt=0, description="The job is re-issued when no result came this long after.")

    @model_validator(mode="after")
    def _device_or_test_examples(self) -> Job:
        if self.phase is Phase.TEST and (self.device is not None or self.test_examples is None):
            raise ValueError("test jobs have test_examples and no device")
        if self.phase is not Phase.TEST and (self.device is None or self.test_examples is not None):
            raise ValueError(f"{self.phase.value} jobs have a device and no test_examples")
        return self


class JobTerms(NamedTuple):
    """What a job's result is checked against: the fields of its Job that the checks read, without the Job."""

    phase: Phase
    num_examples: int
    test_examples: ExampleRange | None


class JobResult(WireModel):
    """Metadata that travels with a result; the update itself travels as safetensors tensors."""

    # A diverged model has a NaN or infinite loss, which is a result to report, not a malformed message.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    job_id: str = Field(min_length=1, max_length=200)
    worker_id: str = Field(min_length=1, max_length=200)
    loss: float
    # No bounds: accuracy lies in [0, 1], mae and mse are >= 0, and a diverged regression model's error is NaN.
    metric: float | None = Field(
        default=None, description="Eval and test jobs only: the run's simulation.metric (accuracy, mae or mse)."
    )
    num_examples: int = Field(ge=0)
    num_steps: int = Field(ge=0)
    train_seconds: float = Field(ge=0, description="Wall-clock seconds the worker spent (not simulated).")


class ResultAck(WireModel):
    accepted: bool
    reason: Literal["accepted"]


class JobBatch(WireModel):
    """Jobs handed out by one lease request, in queue order; each has its own lease."""

    jobs: list[Job] = Field(min_length=1)


class ResultOutcome(WireModel):
    """What became of one result of a batch: the HTTP status the single-result route would answer, and why."""

    job_id: str | None = Field(description="The job the part names; null when the part could not be decoded.")
    status: int = Field(description="200 accepted; else 403, 404, 409 or 422 as POST /v1/jobs/{id}/result answers.")
    accepted: bool
    reason: str


class BatchResultAck(WireModel):
    """One outcome per result of a batch, in the order of the parts."""

    results: list[ResultOutcome]


class SimulationPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class SimulationStatus(WireModel):
    """The orchestrator's `/v1/status` document; the Kubernetes operator mirrors it into the CR."""

    phase: SimulationPhase
    message: str = ""
    stop_reason: str | None = None
    repetition: int
    repetitions: int
    round: int
    rounds: int
    metric: str = Field(default="accuracy", description="The run's simulation.metric: accuracy, mae or mse.")
    metric_value: float | None = Field(default=None, description="The test split's metric after the last round.")
    accuracy: float | None = Field(default=None, description="metric_value when the metric is accuracy, else null.")
    loss: float | None = None
    simulated_time: float = 0.0
    workers: int = 0
    jobs_queued: int = 0
    jobs_leased: int = 0
    model_version: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    page_polled_at: float | None = Field(
        default=None, description="Unix time of the live page's latest data poll; null: no page has polled."
    )
    page_saw_end: bool = Field(
        default=False,
        description="Whether the live page has been sent the finished run's status (written out, not only asked "
        "for): feles run keeps the orchestrator up for an open page until then.",
    )


class CodecError(ValueError):
    """Bytes that are not a valid tensor message."""


#: safetensors' names of the dtypes that encode_tensors writes itself, by torch's name of the dtype (names, so
#: that importing this module does not import torch); others go through the safetensors package.
SAFETENSORS_DTYPES = {
    "torch.float64": "F64",
    "torch.float32": "F32",
    "torch.float16": "F16",
    "torch.bfloat16": "BF16",
    "torch.int64": "I64",
    "torch.int32": "I32",
    "torch.int16": "I16",
    "torch.int8": "I8",
    "torch.uint8": "U8",
    "torch.bool": "BOOL",
}


def encode_tensors(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> bytes:
    """Tensors (and optional string metadata) as safetensors bytes.

    The format is written here (the header's length as a little-endian u64, the JSON header padded with spaces
    to 8 bytes, the tensors' bytes in header order): safetensors.torch.save's per-call Python took twice as long,
    ~40 us for a tiny model's result, on every job. The package reads these bytes (tests/unit/test_protocol.py).
    """
    from safetensors.torch import save as save_safetensors

    if sys.byteorder != "little" or any(str(tensor.dtype) not in SAFETENSORS_DTYPES for tensor in tensors.values()):
        contiguous = {name: tensor.detach().contiguous() for name, tensor in tensors.items()}
        return save_safetensors(contiguous, metadata=dict(metadata) if metadata else None)
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    blobs, offset = [], 0
    for name, tensor in tensors.items():
        data = _tensor_bytes(tensor)
        header[name] = {
            "dtype": SAFETENSORS_DTYPES[str(tensor.dtype)],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + data.nbytes],
        }
        blobs.append(data)
        offset += data.nbytes
    # pydantic's JSON writer: a fifth of json.dumps' time on a result's header (1.1 vs 5.3 us).
    text = pydantic_core.to_json(header)
    text += b" " * (-len(text) % 8)
    return b"".join([len(text).to_bytes(8, "little"), text, *blobs])


def _tensor_bytes(tensor: torch.Tensor) -> Any:
    """The tensor's bytes in row-major order, as a buffer (a numpy array): without a copy when it is a CPU tensor
    laid out in order (0.6 us instead of the 3.2 us of the general path, twice a result)."""
    import torch

    tensor = tensor.detach()
    if tensor.device.type == "cpu" and tensor.dtype != torch.bfloat16 and tensor.is_contiguous():
        return tensor.numpy()
    return tensor.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy()


#: Largest header decode_tensors reads (the safetensors package's own limit).
MAX_HEADER_BYTES = 100_000_000


def decode_tensors(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata from safetensors bytes; CodecError when malformed.

    Read here for the dtypes encode_tensors writes, with the checks the safetensors package makes (offsets in
    order, without gaps or overlap, covering the data exactly; sizes that match shape and dtype): the package's
    Python, and reading the header twice for the metadata, took 15 of a tiny result's 17 us on the orchestrator,
    which reads 10,000 results a round (now 10 us). The tensors share one writable copy of the data; other dtypes
    and big-endian machines go through the package.
    """
    header, body = _split_message(data)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise CodecError("not a safetensors message: __metadata__ is not a map of strings")
    layout = _layout(header, len(body))
    if layout is None:
        return _decode_with_package(data), dict(metadata)
    buffer = bytearray(body)
    tensors = {name: _tensor_at(buffer, start, stop, dtype, shape) for start, stop, dtype, shape, name in layout}
    return tensors, dict(metadata)


def _split_message(data: bytes) -> tuple[dict[str, Any], memoryview]:
    """The header as JSON and the data after it."""
    if len(data) < 8:
        raise CodecError(f"not a safetensors message: {len(data)} bytes, fewer than the 8 of the header length")
    size = int.from_bytes(data[:8], "little")
    if size > min(len(data) - 8, MAX_HEADER_BYTES):
        raise CodecError(f"not a safetensors message: a header of {size} bytes in a message of {len(data)}")
    try:
        # pydantic's JSON parser: a third of json.loads' time on a result's header (1.2 vs 3.6 us).
        header = pydantic_core.from_json(data[8 : 8 + size])
    except ValueError:
        raise CodecError("not a safetensors message: the header is not JSON") from None
    if not isinstance(header, dict):
        raise CodecError("not a safetensors message: the header is not a JSON object")
    return header, memoryview(data)[8 + size :]


#: A tensor's place in a message: start and stop byte in the data, dtype, shape, name.
Span = tuple[int, int, "torch.dtype", list[int], str]


def _layout(header: dict[str, Any], data_bytes: int) -> list[Span] | None:
    """The tensors' spans in data order, checked to cover the data exactly; None when a dtype is not one
    encode_tensors writes (or on a big-endian machine)."""
    dtypes = _torch_dtypes()
    spans: list[Span] = []
    for name, info in header.items():
        dtype = dtypes.get(info.get("dtype")) if isinstance(info, dict) else None
        if dtype is None:
            return None
        start, stop, shape = _checked_span(name, info, dtype)
        spans.append((start, stop, dtype, shape, name))
    spans.sort(key=lambda span: span[0])
    position = 0
    for start, stop, _, _, name in spans:
        if start != position:
            raise CodecError(f"not a safetensors message: tensor {name!r} starts at byte {start}, not {position}")
        position = stop
    if position != data_bytes:
        raise CodecError(f"not a safetensors message: tensors take {position} bytes, the data has {data_bytes}")
    return spans


def _checked_span(name: str, info: dict[str, Any], dtype: torch.dtype) -> tuple[int, int, list[int]]:
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise CodecError(f"not a safetensors message: tensor {name!r} has no valid shape")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
        raise CodecError(f"not a safetensors message: tensor {name!r} has no valid data_offsets")
    start, stop = offsets
    size = math.prod(shape) * dtype.itemsize
    if not 0 <= start <= stop or stop - start != size:
        raise CodecError(
            f"not a safetensors message: tensor {name!r} takes bytes {start} to {stop}, not the {size} of "
            f"{info['dtype']} {shape}"
        )
    return start, stop, shape


def _tensor_at(buffer: bytearray, start: int, stop: int, dtype: torch.dtype, shape: list[int]) -> torch.Tensor:
    """The tensor in bytes start..stop of `buffer`, sharing its memory when the offset suits the dtype."""
    if start % dtype.itemsize:  # a view needs an offset aligned to the dtype's size: a copy of its own
        buffer, start, stop = bytearray(buffer[start:stop]), 0, stop - start
    count = (stop - start) // dtype.itemsize
    numpy_dtype = _NUMPY_DTYPES.get(dtype)
    if numpy_dtype is None:  # bfloat16: numpy has none
        if not count:
            return _torch().empty(shape, dtype=dtype)
        return _torch().frombuffer(buffer, dtype=dtype, count=count, offset=start).view(shape)
    if numpy_dtype.kind == "b" and buffer[start:stop].strip(b"\x00\x01"):
        raise CodecError("not a safetensors message: a bool tensor holds a byte that is neither 0 nor 1")
    # numpy's view costs half of torch.frombuffer(...).view(shape) (1.3 vs 2.1 us), twice a result.
    array = _numpy().frombuffer(buffer, dtype=numpy_dtype, count=count, offset=start)
    return _torch().from_numpy(array.reshape(shape))


def _decode_with_package(data: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load as load_safetensors

    try:
        return load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise CodecError(f"not a safetensors message: {error}") from None


def _torch() -> Any:
    import torch

    return torch


def _numpy() -> Any:
    import numpy

    return numpy


#: numpy's dtype of each torch dtype decode_tensors reads (all but bfloat16), filled by _torch_dtypes.
_NUMPY_DTYPES: dict[Any, Any] = {}


@functools.cache
def _torch_dtypes() -> dict[str, torch.dtype]:
    """torch's dtypes by safetensors' names, for the dtypes encode_tensors writes; none on a big-endian machine
    (decode_tensors then leaves every message to the package)."""
    torch = _torch()
    if sys.byteorder != "little":
        return {}
    dtypes = {code: getattr(torch, name.removeprefix("torch.")) for name, code in SAFETENSORS_DTYPES.items()}
    _NUMPY_DTYPES.update({d: torch.empty(0, dtype=d).numpy().dtype for d in dtypes.values() if d != torch.bfloat16})
    return dtypes


def encode_result(result: JobResult, tensors: Mapping[str, torch.Tensor]) -> bytes:
    """A job result: the update's tensors with the JSON metadata in the safetensors header."""
    return encode_tensors(tensors, {RESULT_METADATA_KEY: result.model_dump_json()})


def read_result_metadata(raw: str | bytes) -> JobResult:
    """The JobResult in a result's metadata; ValidationError when it is not one.

    JobResult.model_validate_json does the same through the model's validator, whose direct call is 30 % less
    a result (1.6 to 1.1 us: 10,000 results a round at 100,000 devices)."""
    return _JOB_RESULT_JSON(raw)


_JOB_RESULT_JSON = JobResult.__pydantic_validator__.validate_json


def decode_result(data: bytes) -> tuple[JobResult, dict[str, torch.Tensor]]:
    """Inverse of encode_result; CodecError names what is wrong."""
    tensors, metadata = decode_tensors(data)
    raw = metadata.get(RESULT_METADATA_KEY)
    if raw is None:
        raise CodecError(f"result has no {RESULT_METADATA_KEY!r} metadata")
    try:
        result = read_result_metadata(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "<root>"
        raise CodecError(f"result metadata field {field}: {first['msg']}") from None
    return result, tensors


#: Bytes of the length that precedes each part of a batch results body (unsigned, little-endian).
PART_LENGTH_BYTES = 8


def encode_parts(parts: Sequence[bytes]) -> bytes:
    """Several encoded results as one body: each part (an encode_result message) after its 8-byte length."""
    return b"".join(len(part).to_bytes(PART_LENGTH_BYTES, "little") + part for part in parts)


def decode_parts(data: bytes) -> list[bytes]:
    """Inverse of encode_parts; CodecError when a length runs past the body or the body is empty."""
    parts: list[bytes] = []
    view, offset = memoryview(data), 0
    while offset < len(data):
        if offset + PART_LENGTH_BYTES > len(data):
            raise CodecError(f"part {len(parts)}: truncated length at byte {offset}")
        size = int.from_bytes(view[offset : offset + PART_LENGTH_BYTES], "little")
        offset += PART_LENGTH_BYTES
        if size == 0 or offset + size > len(data):
            raise CodecError(f"part {len(parts)}: length {size} does not fit the body")
        parts.append(bytes(view[offset : offset + size]))
        offset += size
    if not parts:
        raise CodecError("a batch of results needs at least one part")
    return parts


def split_extra(tensors: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A result's tensors as (model tensors, algorithm tensors without their prefix)."""
    if not _has_extra(tuple(tensors)):  # most algorithms send none: one lookup, not two passes over the names
        return dict(tensors), {}
    model = {name: t for name, t in tensors.items() if not name.startswith(EXTRA_PREFIX)}
    extra = {name.removeprefix(EXTRA_PREFIX): t for name, t in tensors.items() if name.startswith(EXTRA_PREFIX)}
    return model, extra


@functools.lru_cache(maxsize=256)
def _has_extra(names: tuple[str, ...]) -> bool:
    # Every result of a run names the same tensors: the orchestrator splits 10,000 a round, two or three times each.
    return any(name.startswith(EXTRA_PREFIX) for name in names)


def join_extra(model: Mapping[str, torch.Tensor], extra: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of split_extra."""
    return {**model, **{f"{EXTRA_PREFIX}{name}": tensor for name, tensor in extra.items()}}


def check_finite(tensors: Mapping[str, torch.Tensor]) -> None:
    """Raise CodecError naming the first floating tensor that holds NaN or Inf."""
    import torch

    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CodecError(f"tensor {name!r} holds NaN or Inf")


@dataclass(frozen=True)
class UpdateReference:
    """A global model prepared for checking updates against it once per version, not once per result: its
    floating-point tensors in at least float32 (what distances are taken in) and its L2 norm (in float64)."""

    tensors: Mapping[str, torch.Tensor]
    wide: Mapping[str, torch.Tensor]
    norm: float

    @functools.cached_property
    def elements(self) -> int:
        """Floating-point elements of the model."""
        return sum(t.numel() for t in self.wide.values())

    @classmethod
    def of(cls, tensors: Mapping[str, torch.Tensor]) -> UpdateReference:
        import torch

        # float32 is plenty for a bound that refuses only absurd updates, and a float32 model's tensors need no
        # copy: converting every result to float64 was most of a check (0.16 of 0.2 ms for mlp_small).
        wide = {name: t.detach().to(torch.promote_types(t.dtype, torch.float32))
                for name, t in tensors.items() if t.is_floating_point()}  # fmt: skip
        norm = math.sqrt(sum(float(t.to(torch.float64).square().sum()) for t in wide.values()))
        return cls(dict(tensors), wide, norm)


def check_update(
    tensors: Mapping[str, torch.Tensor],
    reference: Mapping[str, torch.Tensor] | UpdateReference,
    distance: float | None = None,
) -> None:
    """Raise CodecError unless `tensors` has exactly the reference's names, shapes, dtypes, finite values, and
    lies within the bound of the reference; `distance` is the update's, when update_distances measured it."""
    if not isinstance(reference, UpdateReference):
        reference = UpdateReference.of(reference)
    missing = sorted(set(reference.tensors) - set(tensors))
    extra = sorted(set(tensors) - set(reference.tensors))
    if missing or extra:
        raise CodecError(f"tensor names differ from the model's: missing {missing}, unexpected {extra}")
    for name, expected in reference.tensors.items():
        got = tensors[name]
        if got.shape != expected.shape or got.dtype != expected.dtype:
            raise CodecError(
                f"tensor {name!r}: expected {expected.dtype} {tuple(expected.shape)}, "
                f"got {got.dtype} {tuple(got.shape)}"
            )
    if distance is None:
        import torch

        squares = [
            float(torch.dist(tensors[name].detach().to(ref.dtype), ref)) ** 2 for name, ref in reference.wide.items()
        ]
        distance = math.sqrt(sum(squares))
    if not math.isfinite(distance):
        # NaN or Inf in a tensor makes the distance non-finite: only then are the tensors searched for them.
        check_finite({name: tensors[name] for name in reference.wide})
    bound = MAX_UPDATE_DISTANCE_RATIO * (reference.norm + 1.0)
    if not distance <= bound:
        raise CodecError(
            f"update is {distance:.3g} away from the global model (L2), more than {MAX_UPDATE_DISTANCE_RATIO:g} x "
            f"(||global|| + 1) = {bound:.3g}: refused as absurd"
        )


def has_layout(tensors: Mapping[str, torch.Tensor], reference: UpdateReference) -> bool:
    """Whether `tensors` has exactly the reference's names, shapes and dtypes (what update_distances needs)."""
    return tensors.keys() == reference.tensors.keys() and all(
        tensors[name].shape == expected.shape and tensors[name].dtype == expected.dtype
        for name, expected in reference.tensors.items()
    )


def update_distances(updates: Sequence[Mapping[str, torch.Tensor]], reference: UpdateReference) -> list[float]:
    """The L2 distance of each update from the reference over the floating-point tensors (each with the
    reference's layout, has_layout), in the reference's precision, for the results of a batch.

    Small models' updates are measured in one stacked subtraction and sum per tensor for all of them (check_update's
    call per tensor took 11 of a tiny result's 13 us); bigger ones one by one, as the stacked copy of a batch of
    them then costs more than the calls it saves (mlp_small, 3 updates: 1.0-1.6 ms stacked, 0.5 ms one by one,
    with the cold caches of a busy orchestrator).
    """
    import torch

    if not updates:
        return []
    # One no_grad for the batch rather than a detach() per tensor: 1.5 us each, 15 ms a round at 10,000 results.
    with torch.no_grad():
        if reference.elements < STACKED_DISTANCE_ELEMENTS:
            return _stacked_distances(updates, reference)
        return [_distance(update, reference) for update in updates]


def _stacked_distances(updates: Sequence[Mapping[str, torch.Tensor]], reference: UpdateReference) -> list[float]:
    import torch

    squares = torch.zeros(len(updates), dtype=torch.float64)
    for name, ref in reference.wide.items():
        stacked = torch.stack([update[name] for update in updates]).to(ref.dtype)
        squares += stacked.sub_(ref).square_().reshape(len(updates), -1).sum(1, dtype=torch.float64)
    return squares.sqrt_().tolist()


def _distance(update: Mapping[str, torch.Tensor], reference: UpdateReference) -> float:
    import torch

    square = torch.zeros((), dtype=torch.float64)
    for name, ref in reference.wide.items():
        square += update[name].to(ref.dtype).sub(ref).square_().sum(dtype=torch.float64)
    return float(square.sqrt_())


def check_examples(job: Job | JobTerms, result: JobResult) -> None:
    """Raise CodecError unless a fit or eval result used exactly the examples its job asked for."""
    if result.num_examples != job.num_examples:
        raise CodecError(f"num_examples is {result.num_examples}, the job asked for {job.num_examples}")


def check_test_result(job: Job | JobTerms, result: JobResult, tensors: Mapping[str, torch.Tensor]) -> None:
    """Raise CodecError unless a test job's result has a metric, no tensors and one example per test example."""
    assert job.test_examples is not None
    expected = job.test_examples.stop - job.test_examples.start
    if result.metric is None:
        raise CodecError("a test result needs a metric")
    if result.num_examples != expected:
        raise CodecError(f"num_examples is {result.num_examples}, the test shard has {expected}")
    if tensors:
        raise CodecError(f"a test result carries no tensors, got {sorted(tensors)}")


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN/Inf: such values become null."""
    if value is None or not math.isfinite(value):
        return None
    return value


def json_safe(document: Any) -> Any:
    """A copy of a JSON-like document with non-finite floats replaced by null."""
    if isinstance(document, float):
        return finite_or_none(document)
    if isinstance(document, dict):
        return {key: json_safe(value) for key, value in document.items()}
    if isinstance(document, list | tuple):
        return [json_safe(value) for value in document]
    return document
