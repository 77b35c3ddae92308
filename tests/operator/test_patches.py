"""JSON merge patches: of a workload's template, and of a whole status."""

from __future__ import annotations

from feles_operator.patches import merge_patch, status_patch


def test_merge_patch() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2], "gone": True}
    new = {"a": 1, "b": {"c": 5, "d": 3}, "l": [1], "new": "x"}
    assert merge_patch(old, new) == {"gone": None, "b": {"c": 5}, "l": [1], "new": "x"}
    assert merge_patch(old, old) == {}


def test_status_patch_nulls_the_keys_of_every_old_status() -> None:
    written = {"phase": "Running", "unreachableSince": "2027-01-15T08:00:00Z", "round": 3}
    shown = {"phase": "Running", "message": "stale"}
    new = {"phase": "Running", "round": 4}
    expected = {"phase": "Running", "round": 4, "unreachableSince": None, "message": None}
    assert status_patch(new, written, shown) == expected
    assert status_patch(new) == new
