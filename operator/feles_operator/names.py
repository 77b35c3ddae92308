"""What every kind the operator serves shares: its API group and version, who manages the children, ports."""

from __future__ import annotations

from collections.abc import Mapping

GROUP = "feles.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: Who creates the children (app.kubernetes.io/managed-by) and reports events.
MANAGER = "feles-operator"

#: Port of an orchestrator's HTTP API (and of /healthz, /readyz, /metrics), whichever kind runs it.
API_PORT = 8080


def crd_name(plural: str) -> str:
    """The CustomResourceDefinition's name for a kind of this group."""
    return f"{plural}.{GROUP}"


def selector_string(labels: Mapping[str, str]) -> str:
    """A label selector in its string form, as `.status.selector` and `kubectl -l` take it."""
    return ",".join(f"{key}={value}" for key, value in labels.items())
