"""Pieces every child object shares: labels, metadata, pod security, images, resources, volumes."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from feles_operator.settings import OperatorSettings
from feles_operator.simulation import names
from feles_operator.simulation.resource import FelesSimulationSpec, PodSettings

#: Who the containers run as: the image's non-root user (the Dockerfile creates it with this id).
USER_ID = 10001
TEMPLATE_HASH_ANNOTATION = f"{names.GROUP}/template-hash"
SPEC_HASH_ANNOTATION = f"{names.GROUP}/spec-hash"
#: Requests and limits of pods whose FelesSimulation sets no resources (so that a quota can admit them).
DEFAULT_RESOURCES: dict[str, dict[str, dict[str, str]]] = {
    names.ORCHESTRATOR: {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
    names.WORKER: {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
}
#: torch threads when `.spec.<component>.threads` is absent (fits the default CPU limits).
DEFAULT_THREADS = {names.ORCHESTRATOR: 2, names.WORKER: 1}


@dataclass(frozen=True)
class Simulation:
    """One FelesSimulation as the builders need it: identity, parsed spec, operator settings."""

    name: str
    namespace: str
    spec: FelesSimulationSpec
    settings: OperatorSettings

    def pod_settings(self, component: str) -> PodSettings:
        chosen = self.spec.orchestrator if component == names.ORCHESTRATOR else self.spec.worker
        return chosen or PodSettings()

    @property
    def image(self) -> str:
        return self.spec.image or self.settings.image

    @property
    def image_pull_policy(self) -> str:
        return self.spec.image_pull_policy or self.settings.image_pull_policy

    @property
    def orchestrator_service_url(self) -> str:
        """How the workers reach the orchestrator: its Service's in-cluster DNS name."""
        return f"http://{names.orchestrator(self.name)}.{self.namespace}.svc:{names.API_PORT}"


def labels(sim: Simulation, component: str) -> dict[str, str]:
    """The standard app.kubernetes.io labels plus the selector labels."""
    return {
        "app.kubernetes.io/name": "feles",
        "app.kubernetes.io/instance": sim.name,
        "app.kubernetes.io/part-of": "feles",
        "app.kubernetes.io/managed-by": names.MANAGER,
        **names.selector_labels(sim.name, component),
    }


def metadata(sim: Simulation, name: str, component: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": sim.namespace, "labels": labels(sim, component)}
    if annotations:
        meta["annotations"] = annotations
    return meta


def digest(document: Any) -> str:
    """A short stable hash of a JSON-like document (detects drift without comparing whole objects)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def pod_security_context() -> dict[str, Any]:
    """Pod Security Standards "restricted": non-root, RuntimeDefault seccomp; volumes writable by the group."""
    return {
        "runAsNonRoot": True,
        "runAsUser": USER_ID,
        "runAsGroup": USER_ID,
        "fsGroup": USER_ID,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def resources(sim: Simulation, component: str) -> dict[str, Any]:
    """The spec's resources verbatim if given (a user may want no limits), else requests and limits."""
    given = sim.pod_settings(component).resources
    if given is not None:
        return given.model_dump(by_alias=True, exclude_none=True)
    return json.loads(json.dumps(DEFAULT_RESOURCES[component]))


def threads(sim: Simulation, component: str) -> int:
    return sim.pod_settings(component).threads or DEFAULT_THREADS[component]


def token_env(sim: Simulation) -> dict[str, Any]:
    """FELES_API_TOKEN from the simulation's Secret: the pods never see the token in their spec."""
    reference = {"name": names.token_secret(sim.name), "key": names.TOKEN_KEY}
    return {"name": "FELES_API_TOKEN", "valueFrom": {"secretKeyRef": reference}}


def tmp_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """A writable /tmp: the root filesystem is read-only."""
    return {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}, {"name": "tmp", "mountPath": names.TMP_DIR}


def data_volume(sim: Simulation) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The dataset PVC at /data, or None when the image's datasets are used."""
    storage = sim.spec.storage.data if sim.spec.storage else None
    if storage is None:
        return None
    volume = {
        "name": "data",
        "persistentVolumeClaim": {"claimName": storage.claim_name, "readOnly": storage.read_only},
    }
    mount: dict[str, Any] = {"name": "data", "mountPath": names.DATA_DIR, "readOnly": storage.read_only}
    if storage.sub_path:
        mount["subPath"] = storage.sub_path
    return volume, mount


def data_args(sim: Simulation) -> list[str]:
    return ["--data-dir", names.DATA_DIR] if data_volume(sim) else []


def pod_spec(
    sim: Simulation,
    component: str,
    container: dict[str, Any],
    volumes: list[dict[str, Any]],
) -> dict[str, Any]:
    """A pod spec around one container, with what both components share."""
    settings = sim.pod_settings(component)
    spec: dict[str, Any] = {
        # The pods never talk to the Kubernetes API: no token in them.
        "automountServiceAccountToken": False,
        # One env var per Service in the namespace is noise (and a slow start in crowded namespaces).
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": volumes,
    }
    if sim.spec.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": item.name} for item in sim.spec.image_pull_secrets]
    if settings.node_selector:
        spec["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        spec["tolerations"] = [item.model_dump(by_alias=True, exclude_none=True) for item in settings.tolerations]
    return spec


def container(
    sim: Simulation,
    component: str,
    args: list[str],
    env: list[dict[str, Any]],
    mounts: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "name": component,
        "image": sim.image,
        "imagePullPolicy": sim.image_pull_policy,
        "args": args,
        "env": env,
        "resources": resources(sim, component),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }
