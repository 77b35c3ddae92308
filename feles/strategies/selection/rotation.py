"""The three picks the rotation selectors alternate between: fastest, biggest loss, least selected."""

from __future__ import annotations

import numpy as np

from feles.strategies.estimates import expected_time
from feles.strategies.selection.base import SelectionContext
from feles.strategies.selection.ranking import loss_scores, top


def fastest(context: SelectionContext) -> np.ndarray:
    """Smallest expected job time (observed quadratic mean, else this round's estimate)."""
    return top(context, expected_time(context), context.size, largest=False)


def biggest_loss(context: SelectionContext) -> np.ndarray:
    """Largest last local loss; never-trained devices first."""
    return top(context, loss_scores(context), context.size, largest=True)


def least_selected(context: SelectionContext) -> np.ndarray:
    """Fewest past fit selections; ties in random order."""
    return top(context, context.devices.times_selected, context.size, largest=False)
