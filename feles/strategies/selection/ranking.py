"""Choosing the best devices by a score, with ties broken by the round's seeded generator."""

from __future__ import annotations

import numpy as np

from feles.strategies.selection.base import SelectionContext


def ranked(
    context: SelectionContext, scores: np.ndarray, *, largest: bool, candidates: np.ndarray | None = None
) -> np.ndarray:
    """The candidates (default: the available devices), best score first.

    `scores` is indexed by device id. Equal scores (counts, never-seen devices) are ordered by a seeded
    random permutation, so ties do not always favour low ids.
    """
    pool = context.available if candidates is None else np.asarray(candidates, dtype=np.int64)
    values = np.asarray(scores, dtype=np.float64)[pool]
    keys = -values if largest else values
    tiebreak = context.rng.permutation(len(pool))
    return pool[np.lexsort((tiebreak, keys))]


def top(
    context: SelectionContext,
    scores: np.ndarray,
    count: int,
    *,
    largest: bool,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """Sorted ids of the `count` best candidates by `scores` (see `ranked`)."""
    best = ranked(context, scores, largest=largest, candidates=candidates)
    return np.sort(best[: max(count, 0)])


def loss_scores(context: SelectionContext) -> np.ndarray:
    """Last local loss per device, +inf for devices never trained (unexplored devices come first)."""
    losses = context.devices.last_loss
    return np.where(np.isnan(losses), np.inf, losses)
