"""`best_ips`, `best_net_speed`, `best_energy`: the available devices with the highest value of one resource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from feles.plugin_params import take_params
from feles.strategies.selection.base import SELECTORS, SelectionContext, Selector
from feles.strategies.selection.ranking import top


class BestSelector(Selector):
    """The k (of the available) devices with the largest `resource` (a DeviceView array)."""

    resource: ClassVar[str]
    name: ClassVar[str]

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(take_params(f"selection {self.name}", params, {}))

    def select_devices(self, context: SelectionContext) -> np.ndarray:
        return top(context, getattr(context.devices, self.resource), context.size, largest=True)


@SELECTORS.register("best_ips")
class BestIpsSelector(BestSelector):
    """Fastest computation: highest iterations per second (fixed per device)."""

    resource, name = "ips", "best_ips"


@SELECTORS.register("best_net_speed")
class BestNetSpeedSelector(BestSelector):
    """Fastest network this round."""

    resource, name = "net_speed", "best_net_speed"


@SELECTORS.register("best_energy")
class BestEnergySelector(BestSelector):
    """Most energy left this round."""

    resource, name = "energy", "best_energy"
