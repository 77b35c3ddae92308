"""The FelesSimulation API's identity, the names of its children and the labels that tie them together."""

from __future__ import annotations

import re

from feles_operator.names import API_PORT as API_PORT
from feles_operator.names import API_VERSION as API_VERSION
from feles_operator.names import GROUP as GROUP
from feles_operator.names import MANAGER as MANAGER
from feles_operator.names import VERSION as VERSION
from feles_operator.names import crd_name
from feles_operator.names import selector_string as selector_string

KIND = "FelesSimulation"
PLURAL = "felessimulations"
SINGULAR = "felessimulation"
SHORT_NAME = "fsim"
CRD_NAME = crd_name(PLURAL)

#: Label keys. The first two form every selector: stable for the children's lifetime.
SIMULATION_LABEL = f"{GROUP}/simulation"
COMPONENT_LABEL = "app.kubernetes.io/component"
ORCHESTRATOR = "orchestrator"
WORKER = "worker"

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
