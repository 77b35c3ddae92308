"""Garbage-collector settings of the orchestrator process: 10,000 jobs a round come and go."""

from __future__ import annotations

import gc

#: Allocations of container objects between two young collections (CPython's default: 700).
YOUNG_THRESHOLD = 200_000
#: Young collections between two middle ones, and middle ones between two full ones (defaults: 10, 10).
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 100


def settle_collector() -> None:
    """Freeze what the imports made, and collect less often.

    The ~250,000 objects of the imports (torch, pydantic, FastAPI) live as long as the process; frozen, full
    collections no longer walk them. A round of 10,000 jobs then still makes ~80,000 container objects (jobs,
    queue entries, results) that live until the round ends: with the default thresholds they were walked by
    ~190 young, 17 middle and 1.5 full collections a round, 80 ms of a 196 ms round at 100,000 devices with
    k = 0.1 (bench/population.py). The young count is allocations less deallocations, and a round frees what
    it made: at 200,000, above a 10,000-job round's peak, the steady rounds run no collection at all (at 50,000,
    14 young ones in 11 rounds still cost 11-16 ms a round). Reference cycles are rare in FELES, and reference
    counting frees everything else at once, so collecting less often keeps little memory longer (a young
    collection, when one comes, walks up to 200,000 objects: ~50 ms). No collection first: after the imports it
    takes 80 ms of the start-up and finds ~30 objects to free.
    """
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
