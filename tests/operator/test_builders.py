"""The pure builders: every child is a valid Kubernetes object, and the children fit together."""

from __future__ import annotations

import base64
from typing import Any

import kubernetes_validate
import pytest
import yaml

from feles.config import parse_spec
from feles_operator.settings import OperatorSettings
from feles_operator.simulation import builders, names
from feles_operator.simulation.builders import Simulation, build_children
from feles_operator.simulation.builders.common import TEMPLATE_HASH_ANNOTATION
from feles_operator.simulation.resource import parse_resource

DIGITS = {"simulation": {"dataset": "digits"}, "devices": {"num": 20}}
SETTINGS = OperatorSettings(
    image="registry.example/feles:1.0",
    operator_namespace="feles-system",
    operator_labels={"app.kubernetes.io/name": "feles-operator"},
)
VARIANTS = {
    "defaults": {"simulation": DIGITS},
    "claims": {
        "simulation": DIGITS,
        "storage": {"results": {"claimName": "my-results"}, "data": {"claimName": "datasets", "subPath": "fm"}},
    },
    "sized": {
        "simulation": DIGITS,
        "workers": 0,
        "image": "other/feles:2",
        "imagePullPolicy": "Always",
        "imagePullSecrets": [{"name": "registry"}],
        "storage": {"results": {"size": "5Gi", "storageClassName": "fast"}},
        "orchestrator": {"threads": 4, "resources": {"requests": {"cpu": 4}}},
        "worker": {
            "nodeSelector": {"pool": "cpu"},
            "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
        },
    },
}


def simulation(spec: dict[str, Any], settings: OperatorSettings = SETTINGS, name: str = "demo") -> Simulation:
    return Simulation(name, "team-a", parse_resource(spec), settings)


def by_kind(children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for child in children:
        key = child["kind"] if child["kind"] != "Service" else f"Service/{child['metadata']['name']}"
        found[key] = child
    return found


def pod(template: dict[str, Any]) -> dict[str, Any]:
    return template["spec"]["template"]["spec"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_child_is_a_valid_kubernetes_object(variant: str) -> None:
    children = build_children(simulation(VARIANTS[variant]), "s3cr3t", replicas=3)
    for child in children:
        kubernetes_validate.validate(child, "1.34.0", strict=True)
        assert child["metadata"]["namespace"] == "team-a"
        assert child["metadata"]["labels"][names.SIMULATION_LABEL] == "demo"
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "feles-operator"
        assert len(child["metadata"]["name"]) <= 63
    kinds = [child["kind"] for child in children]
    assert kinds.index("ConfigMap") < kinds.index("Deployment") and kinds.index("Secret") < kinds.index("Deployment")
    assert kinds[-1] == "StatefulSet"


def test_orchestrator_deployment() -> None:
    children = by_kind(build_children(simulation(VARIANTS["defaults"]), "s3cr3t", 2))
    deployment = children["Deployment"]
    assert deployment["metadata"]["name"] == "demo-orchestrator"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"feles.io/simulation": "demo", "app.kubernetes.io/component": "orchestrator"}
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (container,) = pod(deployment)["containers"]
    assert container["image"] == "registry.example/feles:1.0" and container["imagePullPolicy"] == "IfNotPresent"
    assert container["args"] == [
        "orchestrator",
        "--config",
        "/etc/feles/simulation.yaml",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "--output-folder",
        "/results",
        "--threads",
        "2",
    ]
    assert "--exit-on-completion" not in container["args"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    secret, config_map = children["Secret"], children["ConfigMap"]
    assert container["env"] == [
        {
            "name": "FELES_API_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": secret["metadata"]["name"], "key": "token"}},
        }
    ]
    volumes = {volume["name"]: volume for volume in pod(deployment)["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert volumes["spec"]["configMap"]["name"] == config_map["metadata"]["name"] == "demo-spec"
    assert mounts["/etc/feles"] == {"name": "spec", "mountPath": "/etc/feles", "readOnly": True}
    assert volumes["results"] == {"name": "results", "emptyDir": {}} and mounts["/results"]["name"] == "results"
    assert volumes["tmp"]["emptyDir"] and mounts["/tmp"]["name"] == "tmp"
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet"])
def test_pods_are_locked_down(kind: str) -> None:
    spec = pod(by_kind(build_children(simulation(VARIANTS["claims"]), "t", 2))[kind])
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["requests"] and container["resources"]["limits"]
    writable = {mount["mountPath"] for mount in container["volumeMounts"] if not mount.get("readOnly")}
    assert "/tmp" in writable
    assert "/data" not in writable  # the dataset claim is mounted read-only
    assert {"--data-dir", "/data"} <= set(container["args"])


def test_workers_stateful_set_and_services() -> None:
    sim = simulation(VARIANTS["defaults"])
    children = by_kind(build_children(sim, "t", 3))
    sts, headless, service = (
        children["StatefulSet"],
        children["Service/demo-workers"],
        children["Service/demo-orchestrator"],
    )
    assert sts["metadata"]["name"] == "demo-worker"
    assert sts["spec"]["replicas"] == 3 and sts["spec"]["podManagementPolicy"] == "Parallel"
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    assert headless["spec"]["clusterIP"] == "None"
    selector = sts["spec"]["selector"]["matchLabels"]
    assert selector == headless["spec"]["selector"] == names.selector_labels("demo", "worker")
    assert selector.items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    (container,) = pod(sts)["containers"]
    url = f"http://{service['metadata']['name']}.team-a.svc:{service['spec']['ports'][0]['port']}"
    assert container["args"] == [
        "worker",
        "--orchestrator",
        url,
        "--name",
        "$(POD_NAME)",
        "--threads",
        "1",
        "--metrics-port",
        "9100",
    ]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]
    assert container["env"][0] == {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    assert container["env"][1]["valueFrom"]["secretKeyRef"] == {"name": "demo-api-token", "key": "token"}
    assert service["spec"]["selector"] == children["Deployment"]["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_network_policy_admits_workers_and_operator_only() -> None:
    children = by_kind(build_children(simulation(VARIANTS["defaults"]), "t", 2))
    policy = children["NetworkPolicy"]["spec"]
    orchestrator_labels = children["Deployment"]["spec"]["template"]["metadata"]["labels"]
    worker_labels = children["StatefulSet"]["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= orchestrator_labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    workers, operator = rule["from"]
    assert workers["podSelector"]["matchLabels"].items() <= worker_labels.items()
    assert "namespaceSelector" not in workers  # this namespace only
    assert operator == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "feles-system"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "feles-operator"}},
    }
    outside = OperatorSettings(network_policy=True)
    (rule,) = builders.orchestrator_network_policy(simulation(VARIANTS["defaults"], outside))["spec"]["ingress"]
    assert len(rule["from"]) == 1
    no_policy = build_children(simulation(VARIANTS["defaults"], OperatorSettings(network_policy=False)), "t", 1)
    assert "NetworkPolicy" not in {child["kind"] for child in no_policy}


def test_secret_and_config_map() -> None:
    children = by_kind(build_children(simulation(VARIANTS["defaults"]), "s3cr3t", 2))
    secret = children["Secret"]
    assert secret["metadata"]["name"] == "demo-api-token" and secret["immutable"] is True
    assert base64.b64decode(secret["data"]["token"]).decode() == "s3cr3t"
    document = yaml.safe_load(children["ConfigMap"]["data"]["simulation.yaml"])
    assert parse_spec(document) == parse_resource(VARIANTS["defaults"]).simulation
    assert "s3cr3t" not in repr({key: value for key, value in children.items() if key != "Secret"})


def test_storage_variants() -> None:
    claims = by_kind(build_children(simulation(VARIANTS["claims"]), "t", 1))
    assert "PersistentVolumeClaim" not in claims
    volumes = {volume["name"]: volume for volume in pod(claims["Deployment"])["volumes"]}
    assert volumes["results"]["persistentVolumeClaim"] == {"claimName": "my-results"}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "datasets", "readOnly": True}
    (mount,) = [m for m in pod(claims["StatefulSet"])["containers"][0]["volumeMounts"] if m["name"] == "data"]
    assert mount == {"name": "data", "mountPath": "/data", "readOnly": True, "subPath": "fm"}

    sized = by_kind(build_children(simulation(VARIANTS["sized"]), "t", 0))
    claim = sized["PersistentVolumeClaim"]
    assert claim["metadata"]["name"] == "demo-results"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "fast",
    }
    volumes = {volume["name"]: volume for volume in pod(sized["Deployment"])["volumes"]}
    assert volumes["results"]["persistentVolumeClaim"] == {"claimName": "demo-results"}


def test_pod_settings_are_passed_through() -> None:
    children = by_kind(build_children(simulation(VARIANTS["sized"]), "t", 0))
    orchestrator, workers = pod(children["Deployment"]), pod(children["StatefulSet"])
    assert orchestrator["containers"][0]["resources"] == {"requests": {"cpu": 4}}  # verbatim: no limits added
    assert orchestrator["containers"][0]["args"][-2:] == ["--threads", "4"]
    assert orchestrator["containers"][0]["image"] == "other/feles:2"
    assert orchestrator["containers"][0]["imagePullPolicy"] == "Always"
    assert orchestrator["imagePullSecrets"] == workers["imagePullSecrets"] == [{"name": "registry"}]
    assert workers["nodeSelector"] == {"pool": "cpu"} and "nodeSelector" not in orchestrator
    assert workers["tolerations"] == [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]
    assert children["StatefulSet"]["spec"]["replicas"] == 0


def test_template_hash_follows_the_pod_template() -> None:
    def hashes(spec: dict[str, Any]) -> tuple[str, str]:
        children = by_kind(build_children(simulation(spec), "any-token", 2))
        return tuple(
            children[kind]["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION]
            for kind in ("Deployment", "StatefulSet")
        )

    base = hashes(VARIANTS["defaults"])
    assert hashes(VARIANTS["defaults"]) == base  # the random token is not in the templates
    other_image = hashes({**VARIANTS["defaults"], "image": "other/feles:2"})
    assert other_image[0] != base[0] and other_image[1] != base[1]
    more_workers = hashes({**VARIANTS["defaults"], "workers": 9})
    assert more_workers == base  # replicas are not in the template
