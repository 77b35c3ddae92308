"""The Helm chart: lint, render with default and non-default values, valid objects, least-privilege RBAC."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from feles.config import deep_merge
from feles_operator.simulation import names
from feles_operator.simulation.crd import custom_resource_definition
from feles_operator.sweep import crd as sweep_crd
from tests.operator.helm import CHART, ROOT, helm, notes, template
from tests.operator.tools import ToolsUnavailable, missing_tool, tool

VALUES = yaml.safe_load((Path(__file__).parent / "values-namespaced.yaml").read_text())


@pytest.fixture(scope="module", autouse=True)
def helm_binary() -> None:
    try:
        tool("helm")
    except ToolsUnavailable as error:
        missing_tool(str(error))


@pytest.fixture(scope="module")
def default() -> list[dict[str, Any]]:
    return template()


@pytest.fixture(scope="module")
def namespaced() -> list[dict[str, Any]]:
    return template(VALUES, release="sims", namespace="feles")


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return [obj["kind"] for obj in objects]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [obj for obj in objects if obj["kind"] == kind]
    return found


def allowed(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"] for rule in rules)


def test_lint() -> None:
    for extra in ([], ["--values", str(Path(__file__).parent / "values-namespaced.yaml")]):
        result = helm("lint", "--strict", str(CHART), *extra, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", ["default", "namespaced"])
def test_every_rendered_object_is_valid(values: str, request: pytest.FixtureRequest) -> None:
    objects = request.getfixturevalue(values)
    for obj in objects:
        kubernetes_validate.validate(obj, "1.34.0", strict=True)
    definitions = [obj for obj in objects if obj["kind"] == "CustomResourceDefinition"]
    assert definitions == [custom_resource_definition(), sweep_crd.custom_resource_definition()]


def test_default_install(default: list[dict[str, Any]]) -> None:
    assert sorted(kinds(default)) == sorted(
        ["CustomResourceDefinition"] * 2 + ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"]
    )
    for obj in default:
        if obj["kind"] != "CustomResourceDefinition":
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == "feles" and labels["app.kubernetes.io/instance"] == "feles"
            assert labels["app.kubernetes.io/managed-by"] == "Helm" and labels["helm.sh/chart"] == "feles-0.1.0"
    deployment = one(default, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert deployment["metadata"]["namespace"] == "feles-system"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert container["image"] == f"feles:{importlib.metadata.version('feles')}"
    assert container["args"] == [
        "operator",
        "--standalone",
        "--all-namespaces",
        "--liveness=http://0.0.0.0:8080/healthz",
    ]
    env = {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}
    assert env["FELES_IMAGE"] == container["image"]
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert env["FELES_OPERATOR_LABELS"] == ",".join(f"{key}={value}" for key, value in selector.items())
    assert "FELES_ORCHESTRATOR_URL_TEMPLATE" not in env
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"] and container["resources"]["requests"]
    binding = one(default, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "feles-operator", "namespace": "feles-system"}]
    assert binding["roleRef"]["name"] == one(default, "ClusterRole")["metadata"]["name"]


def test_namespaced_install(namespaced: list[dict[str, Any]]) -> None:
    assert "ClusterRole" not in kinds(namespaced) and "ClusterRoleBinding" not in kinds(namespaced)
    roles = [obj for obj in namespaced if obj["kind"] == "Role"]
    bindings = [obj for obj in namespaced if obj["kind"] == "RoleBinding"]
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "feles-bot", "namespace": "feles"}]
    deployment = one(namespaced, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["image"] == "registry.example/feles:1.2.3" and container["imagePullPolicy"] == "Always"
    assert container["args"] == [
        "operator",
        "--standalone",
        "--namespace=team-a",
        "--namespace=team-b",
        "--liveness=http://0.0.0.0:8080/healthz",
        "--debug",
    ]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["FELES_IMAGE"] == "registry.example/feles-cuda:1.2.3"
    assert env["FELES_NETWORK_POLICY"] == "false" and env["FELES_POLL_INTERVAL"] == "2"
    assert env["FELES_ORCHESTRATOR_URL_TEMPLATE"] == "http://{name}-orchestrator.{namespace}.svc.cluster.local:8080"
    assert spec["serviceAccountName"] == "feles-bot" and spec["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert spec["tolerations"][0]["key"] == "dedicated" and spec["priorityClassName"] == "system-cluster-critical"
    assert deployment["spec"]["template"]["metadata"]["labels"]["team"] == "research"
    assert one(namespaced, "ServiceAccount")["metadata"]["annotations"] == {"example.com/role": "operator"}
    assert not allowed(roles[0]["rules"], "networking.k8s.io", "networkpolicies", "create")


# What the operator does, as (API group, resource, verb): kopf's watch and bookkeeping, the children it
# creates, what it reads back (ConfigMap hash, workloads, token, pods) and what it patches.
NEEDED = [
    ("feles.io", "felessimulations", "list"),
    ("feles.io", "felessimulations", "watch"),
    ("feles.io", "felessimulations", "patch"),
    ("feles.io", "felessimulations/status", "patch"),
    ("feles.io", "felessimulations/finalizers", "update"),
    ("feles.io", "felessimulations", "create"),  # a FelesSweep's cells
    ("feles.io", "felessweeps", "get"),  # read afresh when a cell's phase changes
    ("feles.io", "felessweeps", "list"),
    ("feles.io", "felessweeps", "watch"),
    ("feles.io", "felessweeps", "patch"),
    ("feles.io", "felessweeps/status", "patch"),
    ("feles.io", "felessweeps/finalizers", "update"),
    ("", "events", "create"),
    ("", "pods", "list"),
    ("", "secrets", "get"),
    *[(group, resource, "create") for group, resource in [
        ("", "configmaps"), ("", "secrets"), ("", "services"), ("", "persistentvolumeclaims"),
        ("apps", "deployments"), ("apps", "statefulsets"), ("networking.k8s.io", "networkpolicies"),
    ]],
    ("", "configmaps", "get"),
    ("apps", "deployments", "get"),
    ("apps", "deployments", "patch"),
    ("apps", "statefulsets", "get"),
    ("apps", "statefulsets", "patch"),
]  # fmt: skip


def test_rbac_allows_what_the_operator_does_and_no_more(default: list[dict[str, Any]]) -> None:
    rules = one(default, "ClusterRole")["rules"]
    for needed in NEEDED:
        assert allowed(rules, *needed), needed
    granted = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    # Beyond the needs: only reads of objects the operator itself writes.
    extra = granted - set(NEEDED)
    assert extra <= {
        ("feles.io", "felessimulations", "get"),
        ("feles.io", "felessimulations/status", "get"),
        ("feles.io", "felessweeps/status", "get"),
        ("", "services", "get"),
        ("", "persistentvolumeclaims", "get"),
        ("networking.k8s.io", "networkpolicies", "get"),
    }, extra
    assert not any(verb in ("delete", "deletecollection", "*", "escalate", "bind") for _, _, verb in granted)
    assert not any("*" in (group, resource) for group, resource, _ in granted)


def test_every_builder_kind_is_covered_by_rbac(default: list[dict[str, Any]]) -> None:
    from feles_operator.kube import PLURALS
    from feles_operator.settings import OperatorSettings
    from feles_operator.simulation.builders import Simulation, build_children
    from feles_operator.simulation.resource import parse_resource

    spec = parse_resource({"simulation": {}, "storage": {"results": {"size": "1Gi"}}})
    rules = one(default, "ClusterRole")["rules"]
    for child in build_children(Simulation("x", "y", spec, OperatorSettings()), "t", 1):
        group = child["apiVersion"].rpartition("/")[0]
        assert allowed(rules, group, PLURALS[child["kind"]], "create"), child["kind"]


def test_values_schema_rejects_bad_values() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.validate(defaults, schema)
    jsonschema.validate(deep_merge(defaults, VALUES), schema)  # helm validates the merged values
    result = helm("template", "feles", str(CHART), "--set", "logLevel=loud", check=False)
    assert result.returncode != 0 and "logLevel" in result.stderr
    result = helm("template", "feles", str(CHART), "--set", "simulations.pollInterval=0", check=False)
    assert result.returncode != 0 and "pollInterval" in result.stderr


def test_notes_tell_what_to_do_next() -> None:
    text = notes()
    assert "kubectl apply -f manifests/examples/simulation.yaml" in text
    assert "kubectl get fsim -w" in text and "kubectl scale fsim fashion-mnist --replicas 8" in text
    assert "/v1/results" in text and "kubectl delete fsim fashion-mnist" in text
    assert "kubectl apply -n team-a -f manifests/examples/simulation.yaml" in notes(VALUES)


def test_chart_versions() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == importlib.metadata.version("feles")
    assert chart["name"] == "feles" and chart["apiVersion"] == "v2"
    assert (ROOT / "charts" / "feles" / "crds" / f"{names.CRD_NAME}.yaml").is_file()
