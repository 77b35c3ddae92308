"""A fit update is checked against the current model prepared once per version (UpdateReference)."""

from __future__ import annotations

import math

import pytest
import torch

from feles import protocol
from feles.orchestrator.model_store import ModelStore
from feles.protocol import (
    MAX_UPDATE_DISTANCE_RATIO,
    CodecError,
    UpdateReference,
    check_update,
    has_layout,
    update_distances,
)


def test_the_prepared_reference_follows_the_published_version() -> None:
    store = ModelStore()
    store.publish({"w": torch.full((4,), 3.0), "steps": torch.tensor(1)})
    assert store.reference().norm == pytest.approx(6.0)
    assert store.reference() is store.reference()  # built once per version
    store.publish({"w": torch.zeros(4), "steps": torch.tensor(1)})
    # A stale reference would measure updates against the previous model.
    assert store.reference().norm == 0.0
    far = {"w": torch.full((4,), MAX_UPDATE_DISTANCE_RATIO), "steps": torch.tensor(1)}
    with pytest.raises(CodecError, match="refused as absurd"):
        check_update(far, store.reference())


def test_a_prepared_reference_judges_as_the_plain_one_and_names_a_nan_tensor() -> None:
    reference = {"a": torch.ones(3), "b": torch.zeros(2, 2)}
    prepared = UpdateReference.of(reference)
    good = {"a": torch.full((3,), 1.5), "b": torch.ones(2, 2)}
    check_update(good, reference)
    check_update(good, prepared)
    for bad_value in (math.nan, math.inf):
        bad = {"a": torch.ones(3), "b": torch.tensor([[0.0, bad_value], [0.0, 0.0]])}
        for ref in (reference, prepared):
            with pytest.raises(CodecError, match="tensor 'b' holds NaN or Inf"):
                check_update(bad, ref)


@pytest.fixture(params=["stacked", "one by one"])
def distance_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways update_distances measures: stacked (small models) and one update at a time (bigger ones)."""
    monkeypatch.setattr(protocol, "STACKED_DISTANCE_ELEMENTS", 10**9 if request.param == "stacked" else 0)
    return request.param


def test_distances_measured_together_are_each_updates_own(distance_path: str) -> None:
    reference = UpdateReference.of({"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2), "steps": torch.tensor(3)})
    updates = [
        {"w": reference.tensors["w"] + shift, "b": torch.full((2,), 1.0 - shift), "steps": torch.tensor(4)}
        for shift in (0.0, 0.5, -2.0)
    ]
    expected = [math.sqrt(6 * shift**2 + 2 * shift**2) for shift in (0.0, 0.5, -2.0)]
    assert update_distances(updates, reference) == pytest.approx(expected, rel=1e-6)
    assert update_distances([], reference) == []
    # Tensors that still record gradients measure the same (no graph is built; update_distances runs under no_grad).
    tracked = [{name: tensor.clone().requires_grad_(tensor.is_floating_point()) for name, tensor in update.items()}
               for update in updates]  # fmt: skip
    assert update_distances(tracked, reference) == update_distances(updates, reference)
    poisoned = {**updates[1], "b": torch.tensor([math.nan, 0.0])}
    assert math.isnan(update_distances([updates[0], poisoned], reference)[1])
    # A distance measured with the batch decides as check_update's own measure would.
    check_update(updates[2], reference, update_distances([updates[2]], reference)[0])
    with pytest.raises(CodecError, match="refused as absurd"):
        check_update(updates[2], reference, MAX_UPDATE_DISTANCE_RATIO * (reference.norm + 2.0))
    with pytest.raises(CodecError, match="tensor 'b' holds NaN or Inf"):
        check_update(poisoned, reference, math.nan)


def test_a_big_models_updates_measure_alike_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = torch.Generator().manual_seed(5)
    model = {"w": torch.randn(200, 100, generator=generator), "b": torch.randn(100, generator=generator).half()}
    reference = UpdateReference.of(model)
    assert reference.elements == 20_100 > protocol.STACKED_DISTANCE_ELEMENTS  # measured one by one by default
    updates = [{name: t + torch.randn(t.shape, generator=generator).to(t.dtype) for name, t in model.items()}
               for _ in range(4)]  # fmt: skip
    expected = [
        math.sqrt(sum(float((u[name].float() - model[name].float()).double().square().sum()) for name in model))
        for u in updates
    ]
    one_by_one = update_distances(updates, reference)
    monkeypatch.setattr(protocol, "STACKED_DISTANCE_ELEMENTS", 10**9)
    assert one_by_one == pytest.approx(expected, rel=1e-6)
    assert one_by_one == pytest.approx(update_distances(updates, reference), rel=1e-9)


def test_only_updates_with_the_models_layout_are_measured_together() -> None:
    reference = UpdateReference.of({"w": torch.zeros(2, 3), "b": torch.zeros(2)})
    assert has_layout({"w": torch.ones(2, 3), "b": torch.ones(2)}, reference)
    assert not has_layout({"w": torch.ones(3, 2), "b": torch.ones(2)}, reference)
    assert not has_layout({"w": torch.ones(2, 3), "b": torch.ones(2, dtype=torch.float64)}, reference)
    assert not has_layout({"w": torch.ones(2, 3)}, reference)
    assert not has_layout({"w": torch.ones(2, 3), "b": torch.ones(2), "c": torch.ones(1)}, reference)
