"""Kubernetes Events about a custom resource: built by a pure function, posted without ever failing a caller."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from feles_operator import names
from feles_operator.kube import ApiError, KubeApi, path
from feles_operator.timestamps import rfc3339

log = logging.getLogger("feles_operator.events")

#: The API server rejects longer event messages.
MAX_MESSAGE = 1024


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post about a resource."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def involved_object(body: Mapping[str, Any]) -> dict[str, Any]:
    """The reference an Event carries to the resource it is about (kopf's bodies always name their kind)."""
    meta = body.get("metadata") or {}
    reference = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
    }
    return {key: value for key, value in reference.items() if value is not None}


def event_object(involved: Mapping[str, Any], event: Event, now: float, instance: str) -> dict[str, Any]:
    """A core/v1 Event; its name is unique (no generateName, so it is one request, never a retry duplicate)."""
    message = event.message if len(event.message) <= MAX_MESSAGE else event.message[: MAX_MESSAGE - 3] + "..."
    timestamp = rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{involved['name']}.{uuid.uuid4().hex[:16]}", "namespace": involved["namespace"]},
        "involvedObject": dict(involved),
        "type": event.type,
        "reason": event.reason,
        "message": message,
        "source": {"component": names.MANAGER},
        "reportingComponent": names.MANAGER,
        "reportingInstance": instance,
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "count": 1,
    }


def instance_name() -> str:
    """This operator process, as events report it: its pod's name when in a pod."""
    return os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or names.MANAGER


async def post(api: KubeApi, involved: Mapping[str, Any], events: list[Event], now: float) -> None:
    """Post events in order; a failure is logged, never raised (events are informative only)."""
    for event in events:
        body = event_object(involved, event, now, instance_name())
        try:
            await api.request("POST", path("v1", "events", involved["namespace"]), body=body)
        except (ApiError, OSError) as error:
            log.warning("cannot post event %s about %s: %s", event.reason, involved.get("name"), error)
