"""JSON merge patches (RFC 7386), the only patch the operator sends: dicts merge, lists replace, null deletes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`: removed keys become null."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value) if isinstance(value, Mapping) else value
    return patch


def status_patch(new: Mapping[str, Any], *old: Mapping[str, Any]) -> dict[str, Any]:
    """`.status` replaced whole by `new`: every top-level key of an `old` status that `new` lacks becomes null.

    A merge patch only adds and changes keys; a key that is gone (e.g. unreachableSince) must be sent as null,
    and the caller may know more than one old status (its own last write and what the API last showed it).
    """
    document: dict[str, Any] = {key: None for status in old for key in status}
    document.update(new)
    return document
