"""feles.protocol: the safetensors codec, result messages, update checks and JSON-safe documents."""

from __future__ import annotations

import json
import math
import re

import pytest
import safetensors.torch
import torch
from pydantic import ValidationError

from feles.protocol import (
    RESULT_METADATA_KEY,
    SAFETENSORS_DTYPES,
    CodecError,
    ExampleRange,
    Job,
    JobResult,
    Phase,
    check_test_result,
    check_update,
    decode_result,
    decode_tensors,
    encode_result,
    encode_tensors,
    finite_or_none,
    join_extra,
    json_safe,
    read_result_metadata,
    split_extra,
)


def sample_tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=generator),
        "fc.bias": torch.randn(10, generator=generator, dtype=torch.float64),
        "bn.num_batches_tracked": torch.tensor(17, dtype=torch.int64),
        "half": torch.randn(5, generator=generator).to(torch.float16),
        "brain": torch.randn(5, generator=generator).to(torch.bfloat16),
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 3),
    }


def sample_result(**overrides: object) -> JobResult:
    fields: dict[str, object] = {
        "job_id": "r0-fit-3",
        "worker_id": "worker-1",
        "loss": 0.6931,
        "metric": None,
        "num_examples": 600,
        "num_steps": 38,
        "train_seconds": 1.25,
    }
    fields.update(overrides)
    return JobResult(**fields)


def assert_bit_equal(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    assert got.contiguous().reshape(-1).view(torch.uint8).tolist() == (
        expected.contiguous().reshape(-1).view(torch.uint8).tolist()
    )


def raw_message(header: dict[str, object], payload: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + payload


# --- tensors ----------------------------------------------------------------------------------------


def test_tensors_round_trip_bit_exact() -> None:
    tensors = sample_tensors()
    decoded, metadata = decode_tensors(encode_tensors(tensors))
    assert metadata == {}
    assert set(decoded) == set(tensors)
    for name, tensor in tensors.items():
        assert_bit_equal(decoded[name], tensor)


def test_special_float_values_round_trip_bit_exact() -> None:
    special = torch.tensor([0.0, -0.0, math.inf, -math.inf, math.nan, 1e-45, 3.4e38])
    decoded, _ = decode_tensors(encode_tensors({"x": special}))
    assert_bit_equal(decoded["x"], special)
    assert math.copysign(1.0, decoded["x"][1].item()) == -1.0


def test_non_contiguous_tensor_round_trips_by_value() -> None:
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    transposed = base.t()
    assert not transposed.is_contiguous()
    decoded, _ = decode_tensors(encode_tensors({"t": transposed}))
    assert torch.equal(decoded["t"], transposed)
    assert decoded["t"].shape == (4, 3)


def test_tensors_requiring_grad_can_be_encoded() -> None:
    weight = torch.nn.Parameter(torch.tensor([1.5, -2.5]))
    decoded, _ = decode_tensors(encode_tensors({"w": weight}))
    assert torch.equal(decoded["w"], torch.tensor([1.5, -2.5]))
    assert not decoded["w"].requires_grad


def test_metadata_round_trip() -> None:
    data = encode_tensors({"x": torch.ones(1)}, {"a": "1", "b": "two"})
    _, metadata = decode_tensors(data)
    assert metadata == {"a": "1", "b": "two"}


@pytest.mark.parametrize("dtype", [getattr(torch, name.removeprefix("torch.")) for name in SAFETENSORS_DTYPES])
def test_messages_are_what_the_safetensors_package_reads_and_writes(dtype: torch.dtype) -> None:
    # encode_tensors writes the format itself: the package must read it, and decode it as its own writing.
    tensors = {
        "matrix": (torch.arange(12) % 3).reshape(3, 4).to(dtype),
        "scalar": torch.tensor(1).to(dtype),
        "empty": torch.zeros(0, 5, dtype=dtype),
        "tail": torch.ones(5, dtype=dtype),
    }
    ours = encode_tensors(tensors, {"k": "v"})
    assert int.from_bytes(ours[:8], "little") % 8 == 0
    by_package = safetensors.torch.load(ours)
    assert set(by_package) == set(tensors)
    for name, tensor in tensors.items():
        assert_bit_equal(by_package[name], tensor)
    theirs = safetensors.torch.save(tensors, metadata={"k": "v"})
    assert {name: t.tolist() for name, t in decode_tensors(ours)[0].items()} == {
        name: t.tolist() for name, t in decode_tensors(theirs)[0].items()
    }
    assert decode_tensors(ours)[1] == decode_tensors(theirs)[1] == {"k": "v"}


def test_a_dtype_the_codec_does_not_write_goes_through_the_package() -> None:
    odd = torch.tensor([1.5, -2.0], dtype=torch.float8_e4m3fn)
    decoded, _ = decode_tensors(encode_tensors({"x": odd, "y": torch.ones(2)}))
    assert decoded["x"].dtype == torch.float8_e4m3fn
    assert decoded["x"].float().tolist() == [1.5, -2.0]


def test_decoded_tensors_travel_again_with_a_dtype_the_codec_does_not_write() -> None:
    # decode_tensors' tensors are views of one buffer: the package writes each one's own bytes.
    decoded, _ = decode_tensors(encode_tensors({"w": torch.arange(4.0), "b": torch.ones(2)}))
    decoded["odd"] = torch.tensor([1.5], dtype=torch.float8_e4m3fn)
    again, _ = decode_tensors(encode_tensors(decoded))
    assert again["w"].tolist() == [0.0, 1.0, 2.0, 3.0] and again["odd"].float().tolist() == [1.5]


def test_empty_message_round_trip() -> None:
    assert decode_tensors(encode_tensors({})) == ({}, {})


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"\x00" * 8,
        b"\xff" * 64,
        (1 << 62).to_bytes(8, "little"),
        (10).to_bytes(8, "little") + b"{not json}",
        b"this is certainly not a safetensors file, but it is long enough to have a header",
    ],
)
def test_garbage_bytes_are_a_codec_error(data: bytes) -> None:
    with pytest.raises(CodecError, match="not a safetensors message"):
        decode_tensors(data)


def test_truncated_message_is_a_codec_error() -> None:
    data = encode_tensors({"x": torch.arange(100, dtype=torch.float32)})
    with pytest.raises(CodecError):
        decode_tensors(data[:-4])


def test_header_with_bad_offsets_is_a_codec_error() -> None:
    header = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    with pytest.raises(CodecError):
        decode_tensors(raw_message(header, b"\x00" * 4))


def test_header_with_unknown_dtype_is_a_codec_error() -> None:
    header = {"w": {"dtype": "NOPE", "shape": [1], "data_offsets": [0, 4]}}
    with pytest.raises(CodecError):
        decode_tensors(raw_message(header, b"\x00" * 4))


def test_a_tensor_at_an_offset_its_dtype_cannot_view_is_read_from_a_copy() -> None:
    weights = torch.tensor([1.5, -2.25, 3.0])
    header = {
        "odd": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]},
        "w": {"dtype": "F32", "shape": [3], "data_offsets": [3, 15]},
    }
    decoded, _ = decode_tensors(raw_message(header, bytes([7, 8, 9]) + weights.numpy().tobytes()))
    assert decoded["odd"].tolist() == [7, 8, 9]
    assert torch.equal(decoded["w"], weights)
    decoded["w"][0] = 0.0  # the tensors are writable, like the package's
    assert decoded["odd"].tolist() == [7, 8, 9]


@pytest.mark.parametrize(
    ("header", "data", "reason"),
    [
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\x00" * 8, "starts at byte 4, not 0"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
            },
            b"\x00" * 8,
            "starts at byte 8, not 4|starts at byte 4, not 8",
        ),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 6, "take 4 bytes, the data has 6"),
        ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\x00" * 4, "no valid shape"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, b"\x00" * 4, "no valid data_offsets"),
        ({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x02", "neither 0 nor 1"),
        ({"__metadata__": {"k": 1}}, b"", "__metadata__ is not a map of strings"),
    ],
)
def test_a_header_that_does_not_describe_its_data_is_a_codec_error(header: dict, data: bytes, reason: str) -> None:
    with pytest.raises(CodecError, match=f"not a safetensors message: .*({reason})"):
        decode_tensors(raw_message(header, data))


def test_codec_error_is_a_value_error() -> None:
    assert issubclass(CodecError, ValueError)


# --- results ----------------------------------------------------------------------------------------


def test_result_round_trip() -> None:
    result = sample_result(metric=0.75)
    tensors = sample_tensors()
    decoded_result, decoded_tensors = decode_result(encode_result(result, tensors))
    assert decoded_result == result
    assert decoded_result.metric == 0.75
    assert set(decoded_tensors) == set(tensors)
    for name, tensor in tensors.items():
        assert_bit_equal(decoded_tensors[name], tensor)


def test_result_metadata_travels_in_the_header() -> None:
    result = sample_result()
    _, metadata = decode_tensors(encode_result(result, {"w": torch.ones(1)}))
    assert json.loads(metadata[RESULT_METADATA_KEY])["job_id"] == "r0-fit-3"


def test_result_without_metadata_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match=re.escape("no 'feles.result' metadata")):
        decode_result(encode_tensors({"w": torch.ones(1)}))
    with pytest.raises(CodecError, match=re.escape("no 'feles.result' metadata")):
        decode_result(encode_tensors({"w": torch.ones(1)}, {"other": "x"}))


def test_result_garbage_bytes_are_a_codec_error() -> None:
    with pytest.raises(CodecError):
        decode_result(b"\x01\x02\x03")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"metric": "high"}, "metric"),
        ({"num_examples": -1}, "num_examples"),
        ({"num_steps": "many"}, "num_steps"),
        ({"job_id": ""}, "job_id"),
        ({"train_seconds": -0.5}, "train_seconds"),
        ({"smuggled": 1}, "smuggled"),
    ],
)
def test_result_metadata_with_a_bad_field_names_it(change: dict[str, object], field: str) -> None:
    document = json.loads(sample_result().model_dump_json())
    document.update(change)
    data = encode_tensors({"w": torch.ones(1)}, {RESULT_METADATA_KEY: json.dumps(document)})
    with pytest.raises(CodecError, match=f"result metadata field {field}: "):
        decode_result(data)


def test_result_metadata_missing_a_field_names_it() -> None:
    document = json.loads(sample_result().model_dump_json())
    del document["worker_id"]
    data = encode_tensors({"w": torch.ones(1)}, {RESULT_METADATA_KEY: json.dumps(document)})
    with pytest.raises(CodecError, match="result metadata field worker_id: Field required"):
        decode_result(data)


@pytest.mark.parametrize("loss", [math.nan, math.inf])
def test_a_diverged_loss_travels_as_a_result(loss: float) -> None:
    decoded, _ = decode_result(encode_result(sample_result(loss=loss, metric=0.1), {}))
    assert decoded.loss == loss or (math.isnan(loss) and math.isnan(decoded.loss))


def test_result_metadata_that_is_not_json() -> None:
    data = encode_tensors({"w": torch.ones(1)}, {RESULT_METADATA_KEY: "{not json"})
    with pytest.raises(CodecError, match="result metadata field <root>"):
        decode_result(data)


# --- check_update -----------------------------------------------------------------------------------


def reference() -> dict[str, torch.Tensor]:
    return {
        "fc.weight": torch.zeros(2, 3),
        "fc.bias": torch.zeros(2),
        "bn.num_batches_tracked": torch.tensor(0, dtype=torch.int64),
    }


def test_check_update_accepts_a_matching_update() -> None:
    update = {
        "fc.weight": torch.ones(2, 3),
        "fc.bias": torch.tensor([1.0, -1.0]),
        "bn.num_batches_tracked": torch.tensor(5, dtype=torch.int64),
    }
    assert check_update(update, reference()) is None


def test_check_update_rejects_missing_and_unexpected_names() -> None:
    update = reference()
    del update["fc.bias"]
    update["fc.extra"] = torch.zeros(1)
    with pytest.raises(CodecError) as info:
        check_update(update, reference())
    assert "missing ['fc.bias']" in str(info.value)
    assert "unexpected ['fc.extra']" in str(info.value)


def test_check_update_rejects_only_a_missing_name() -> None:
    update = reference()
    del update["fc.weight"]
    with pytest.raises(CodecError, match=r"missing \['fc.weight'\], unexpected \[\]"):
        check_update(update, reference())


def test_check_update_rejects_a_wrong_shape_naming_the_tensor() -> None:
    update = reference()
    update["fc.weight"] = torch.zeros(3, 2)
    with pytest.raises(CodecError) as info:
        check_update(update, reference())
    assert str(info.value) == "tensor 'fc.weight': expected torch.float32 (2, 3), got torch.float32 (3, 2)"


def test_check_update_rejects_a_wrong_dtype_naming_the_tensor() -> None:
    update = reference()
    update["fc.bias"] = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(CodecError) as info:
        check_update(update, reference())
    assert str(info.value) == "tensor 'fc.bias': expected torch.float32 (2,), got torch.float64 (2,)"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_check_update_rejects_non_finite_values_naming_the_tensor(bad: float) -> None:
    update = reference()
    update["fc.weight"] = torch.zeros(2, 3)
    update["fc.weight"][1, 2] = bad
    with pytest.raises(CodecError, match=r"tensor 'fc.weight' holds NaN or Inf"):
        check_update(update, reference())


def test_check_update_refuses_a_finite_update_too_large_to_square_in_float32() -> None:
    update = reference()
    update["fc.weight"] = torch.full((2, 3), 1e30)  # finite, but its square overflows float32
    with pytest.raises(CodecError, match="refused as absurd"):
        check_update(update, reference())


def test_check_update_after_decoding() -> None:
    update = reference()
    update["fc.bias"] = torch.tensor([0.0, math.nan])
    decoded, _ = decode_tensors(encode_tensors(update))
    with pytest.raises(CodecError, match=re.escape("tensor 'fc.bias' holds NaN or Inf")):
        check_update(decoded, reference())


# --- json_safe --------------------------------------------------------------------------------------


def test_json_safe_replaces_non_finite_floats() -> None:
    document = {
        "loss": math.nan,
        "time": math.inf,
        "low": -math.inf,
        "ok": 0.5,
        "count": 3,
        "name": "nan",
        "nothing": None,
        "flag": True,
        "rounds": [{"accuracy": math.nan, "loss": 1.0}, [math.inf, 2.0]],
        "pair": (math.nan, 1),
    }
    safe = json_safe(document)
    assert safe == {
        "loss": None,
        "time": None,
        "low": None,
        "ok": 0.5,
        "count": 3,
        "name": "nan",
        "nothing": None,
        "flag": True,
        "rounds": [{"accuracy": None, "loss": 1.0}, [None, 2.0]],
        "pair": [None, 1],
    }
    json.dumps(safe, allow_nan=False)  # strict JSON now
    assert math.isnan(document["loss"])  # the input is not modified
    assert math.isnan(document["rounds"][0]["accuracy"])


def test_json_safe_of_scalars() -> None:
    assert json_safe(math.nan) is None
    assert json_safe(2.5) == 2.5
    assert json_safe("x") == "x"
    assert finite_or_none(None) is None
    assert finite_or_none(math.inf) is None
    assert finite_or_none(-1.0) == -1.0


# --- jobs and test results --------------------------------------------------------------------------


def job_fields(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "id": "run.0.3.test.2",
        "run_id": "run",
        "repetition": 0,
        "round": 3,
        "phase": "test",
        "test_examples": {"start": 200, "stop": 300},
        "model_version": 4,
        "epochs": 1,
        "batch_size": 256,
        "num_examples": 100,
        "seed": 0,
        "lease_seconds": 60,
    }
    fields.update(overrides)
    return fields


def test_a_test_job_names_its_examples_and_no_device() -> None:
    job = Job.model_validate(job_fields())
    assert job.phase is Phase.TEST and job.device is None
    assert job.test_examples == ExampleRange(start=200, stop=300)
    assert Job.model_validate_json(job.model_dump_json()) == job


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"test_examples": None}, "test jobs have test_examples and no device"),
        ({"device": 3}, "test jobs have test_examples and no device"),
        ({"phase": "fit", "device": 3}, "fit jobs have a device and no test_examples"),
        ({"phase": "eval", "test_examples": None}, "eval jobs have a device and no test_examples"),
        ({"test_examples": {"start": 5, "stop": 5}}, "stop \\(5\\) must be greater than start \\(5\\)"),
    ],
)
def test_inconsistent_jobs_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Job.model_validate(job_fields(**overrides))


def test_check_test_result_accepts_a_full_shard() -> None:
    job = Job.model_validate(job_fields())
    check_test_result(job, sample_result(job_id=job.id, metric=0.5, num_examples=100), {})


@pytest.mark.parametrize(
    ("overrides", "tensors", "message"),
    [
        ({"metric": None}, {}, "needs a metric"),
        ({"num_examples": 99}, {}, "num_examples is 99, the test shard has 100"),
        ({}, {"w": torch.ones(1)}, "carries no tensors, got \\['w'\\]"),
    ],
)
def test_check_test_result_refuses_what_a_test_job_cannot_produce(
    overrides: dict[str, object], tensors: dict[str, torch.Tensor], message: str
) -> None:
    job = Job.model_validate(job_fields())
    result = sample_result(**{"job_id": job.id, "metric": 0.5, "num_examples": 100, **overrides})
    with pytest.raises(CodecError, match=message):
        check_test_result(job, result, tensors)


@pytest.mark.parametrize(
    "raw",
    [
        '{"job_id": "j", "worker_id": "w", "loss": NaN, "num_examples": 3, "num_steps": 1, "train_seconds": 0.5}',
        '{"job_id": "j", "worker_id": "w", "loss": 1, "metric": 0.5, "num_examples": 3, "num_steps": 0, '
        '"train_seconds": 0}',
    ],
)
def test_result_metadata_reads_as_the_model_validates_it(raw: str) -> None:
    read = read_result_metadata(raw)
    assert isinstance(read, JobResult)
    assert read.model_dump_json() == JobResult.model_validate_json(raw).model_dump_json()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"job_id": "j", "worker_id": "w", "loss": 1, "num_examples": -1, "num_steps": 1, "train_seconds": 0}',
         "num_examples"),
        ('{"job_id": "", "worker_id": "w", "loss": 1, "num_examples": 1, "num_steps": 1, "train_seconds": 0}',
         "job_id"),
        ('{"job_id": "j", "worker_id": "w", "loss": 1, "num_examples": 1, "num_steps": 1, "train_seconds": 0, '
         '"extra": 1}', "extra"),
        ('{"job_id": "j"', "<root>"),
    ],
)  # fmt: skip
def test_bad_result_metadata_is_refused_naming_the_field(raw: str, field: str) -> None:
    with pytest.raises(ValidationError) as error:
        read_result_metadata(raw)
    location = ".".join(str(part) for part in error.value.errors()[0]["loc"])
    assert (location or "<root>") == field


def test_split_extra_separates_algorithm_tensors_from_the_model() -> None:
    model = {"fc.weight": torch.ones(2, 2), "fc.bias": torch.zeros(2)}
    control = {"fc.weight": torch.full((2, 2), 3.0)}
    tensors = join_extra(model, control)
    assert list(tensors) == ["fc.weight", "fc.bias", "extra:fc.weight"]
    split_model, split_control = split_extra(tensors)
    assert split_model.keys() == model.keys() and all(split_model[n] is model[n] for n in model)
    assert split_control.keys() == control.keys() and split_control["fc.weight"] is control["fc.weight"]
    # Without algorithm tensors (the common case, answered from the names alone) the model is a dict of its own.
    alone_model, alone_extra = split_extra(model)
    assert alone_model == model and alone_model is not model and alone_extra == {}
    alone_model.pop("fc.bias")
    assert "fc.bias" in model
