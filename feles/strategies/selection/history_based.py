"""Selectors that read the fit history: with no history yet (round 0) they draw uniformly, as the original did."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from feles.strategies.selection.base import SelectionContext, Selector


def uniform_sample(context: SelectionContext) -> np.ndarray:
    """Sorted ids of `context.size` available devices drawn uniformly without replacement."""
    return np.sort(context.rng.choice(context.available, size=context.size, replace=False))


class HistoryBasedSelector(Selector):
    """A selector that ranks devices by their past losses, times or selections.

    Round 0 has no history (no loss, no observed time, every count 0), so any ranking would only encode
    tie-breaking; the original FELES drew the round's devices uniformly instead, and so does this.
    """

    def select_devices(self, context: SelectionContext) -> np.ndarray:
        if context.round == 0:
            return uniform_sample(context)
        return self.select_from_history(context)

    @abstractmethod
    def select_from_history(self, context: SelectionContext) -> np.ndarray:
        """Ids of the selected devices in a round after the first."""
