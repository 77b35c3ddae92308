"""The FelesSimulation API's identity, the names of its children and the labels that tie them together."""

from __future__ import annotations

import re

GROUP = "feles.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "FelesSimulation"
PLURAL = "felessimulations"
SINGULAR = "felessimulation"
SHORT_NAME = "fsim"
CRD_NAME = f"{PLURAL}.{GROUP}"

#: Who creates the children (app.kubernetes.io/managed-by) and reports events.
MANAGER = "feles-operator"

#: Label keys. The first two form every selector: stable for the children's lifetime.
SIMULATION_LABEL = f"{GROUP}/simulation"
COMPONENT_LABEL = "app.kubernetes.io/component"
ORCHESTRATOR = "orchestrator"
WORKER = "worker"

#: Port of the orchestrator's HTTP API (and of /healthz, /readyz, /metrics).
API_PORT = 8080
#: Port of a worker's Prometheus metrics (feles worker --metrics-port).
WORKER_METRICS_PORT = 9100
#: Key of the API token in the `<name>-api-token` Secret.
TOKEN_KEY = "token"
#: Key of the spec in the `<name>-spec` ConfigMap (mounted at CONFIG_DIR).
SPEC_KEY = "simulation.yaml"
CONFIG_DIR = "/etc/feles"
RESULTS_DIR = "/results"
DATA_DIR = "/data"
TMP_DIR = "/tmp"

#: Longest CR name whose children's names stay valid: `<name>-worker` is a StatefulSet whose pods carry
#: the label controller-revision-hash=`<name>-worker-<10 chars>` (63 at most), and Services are DNS labels.
MAX_NAME_LENGTH = 45
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a simulation (its children would be invalid), or None."""
    if len(name) > MAX_NAME_LENGTH:
        return f"at most {MAX_NAME_LENGTH} characters (got {len(name)}): the children's names derive from it"
    if not re.match(NAME_PATTERN, name):
        return "lower-case letters, digits and '-', starting with a letter (a DNS label)"
    return None


def spec_config_map(name: str) -> str:
    return f"{name}-spec"


def token_secret(name: str) -> str:
    return f"{name}-api-token"


def orchestrator(name: str) -> str:
    """The orchestrator's Deployment, Service and NetworkPolicy."""
    return f"{name}-orchestrator"


def workers(name: str) -> str:
    """The workers' StatefulSet."""
    return f"{name}-worker"


def workers_service(name: str) -> str:
    """The workers' headless Service (the StatefulSet's serviceName)."""
    return f"{name}-workers"


def results_claim(name: str) -> str:
    """The PVC created from `.spec.storage.results.size`."""
    return f"{name}-results"


def selector_labels(name: str, component: str) -> dict[str, str]:
    """The labels that select one component's pods of one simulation."""
    return {SIMULATION_LABEL: name, COMPONENT_LABEL: component}


def selector_string(labels: dict[str, str]) -> str:
    """A label selector in its string form, as `.status.selector` and `kubectl -l` take it."""
    return ",".join(f"{key}={value}" for key, value in labels.items())
