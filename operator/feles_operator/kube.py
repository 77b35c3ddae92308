"""A thin asynchronous Kubernetes REST client: the official client's configuration and transport, dicts in/out.

The official client's typed APIs turn every object into a model class; the operator builds plain dicts, so it
only borrows the configuration (in-cluster or kubeconfig, with token refresh) and the HTTP transport.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3

MERGE_PATCH = "application/merge-patch+json"
#: Plural resource names of the kinds the operator touches.
PLURALS = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Service": "services",
    "Pod": "pods",
    "Event": "events",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "NetworkPolicy": "networkpolicies",
}


class ApiError(Exception):
    """A Kubernetes API request that did not succeed (status 0: no answer at all)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status} {reason}: {message}")


def path(api_version: str, plural: str, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
    """The REST path of a collection, an object or its subresource."""
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    parts = [prefix]
    if namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name:
        parts.append(name)
    if sub:
        parts.append(sub)
    return "/".join(parts)


def object_path(obj: Mapping[str, Any], named: bool = True) -> str:
    """The REST path of an object built by the builders (or of its collection)."""
    meta = obj["metadata"]
    plural = PLURALS[obj["kind"]]
    return path(obj["apiVersion"], plural, meta.get("namespace"), meta["name"] if named else None)


class KubeApi:
    """Asynchronous dict-in/dict-out calls; each runs in a thread over the official client's pool."""

    def __init__(self, api_client: kubernetes.client.ApiClient, timeout: float = 30.0) -> None:
        self.client = api_client
        self.timeout = timeout

    @classmethod
    def from_environment(cls) -> KubeApi:
        """In-cluster credentials when in a pod, else the kubeconfig ($KUBECONFIG or ~/.kube/config)."""
        configuration = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        except kubernetes.config.ConfigException:
            # Read $KUBECONFIG now: the client library reads it once, when first imported.
            config_file = os.environ.get("KUBECONFIG") or None
            kubernetes.config.load_kube_config(config_file=config_file, client_configuration=configuration)
        return cls(kubernetes.client.ApiClient(configuration))

    def close(self) -> None:
        self.client.close()

    def _request(
        self, method: str, url_path: str, body: Any = None, query: Mapping[str, str] | None = None, patch: bool = False
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = MERGE_PATCH if patch else "application/json"
        serialized = self.client.param_serialize(
            method=method,
            resource_path=url_path,
            query_params=list((query or {}).items()) or None,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(*serialized, _request_timeout=self.timeout)
            data = response.read()
        except urllib3.exceptions.HTTPError as error:  # no answer at all: refused, timed out, TLS
            raise ApiError(0, type(error).__name__, str(error)) from None
        if not 200 <= response.status < 300:
            reason, message = response.reason or "", data.decode(errors="replace")
            try:
                document = json.loads(data)
                reason, message = document.get("reason") or reason, document.get("message") or message
            except ValueError:
                pass
            raise ApiError(response.status, reason, message)
        return json.loads(data) if data else {}

    async def request(
        self, method: str, url_path: str, body: Any = None, query: Mapping[str, str] | None = None, patch: bool = False
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self._request, method, url_path, body, query, patch)

    async def get(self, url_path: str) -> dict[str, Any]:
        return await self.request("GET", url_path)

    async def get_or_none(self, url_path: str) -> dict[str, Any] | None:
        try:
            return await self.get(url_path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def list(self, url_path: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        return list((await self.request("GET", url_path, query=query)).get("items") or [])

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", object_path(obj, named=False), body=dict(obj))

    async def patch(self, url_path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386): dicts merge, lists and scalars replace, null deletes."""
        return await self.request("PATCH", url_path, body=dict(body), patch=True)
