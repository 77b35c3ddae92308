"""Times as Kubernetes writes them (RFC 3339, UTC, whole seconds) and back."""

from __future__ import annotations

import calendar
import time


def rfc3339(timestamp: float) -> str:
    """Unix seconds as the RFC 3339 UTC string Kubernetes uses."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def parse_rfc3339(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
