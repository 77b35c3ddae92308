"""A fit update is checked against the current model prepared once per version (UpdateReference)."""

from __future__ import annotations

import math

import pytest
import torch

from feles.orchestrator.model_store import ModelStore
from feles.protocol import MAX_UPDATE_DISTANCE_RATIO, CodecError, UpdateReference, check_update


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
