"""feles.orchestrator.collector: the orchestrator's garbage-collector settings, in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

from feles.orchestrator.collector import MIDDLE_THRESHOLD, OLD_THRESHOLD, YOUNG_THRESHOLD

PROBE = """
import gc, json
import torch  # what the orchestrator imports before it settles the collector
from feles.orchestrator.collector import settle_collector
before = gc.get_freeze_count()
settle_collector()
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(), "thresholds": gc.get_threshold()}))
"""


def test_settling_freezes_the_imports_and_collects_less_often() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    assert report["before"] == 0
    assert report["frozen"] > 10_000  # torch's objects, out of every collection's reach
    assert report["thresholds"] == [YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD]
    assert YOUNG_THRESHOLD > 10 * 700  # well above CPython's default, or rounds of 10,000 jobs pay for it again
