"""The FelesSimulation CustomResourceDefinition, generated from the pydantic models (`feles crd` prints it).

pydantic emits JSON Schema (draft 2020-12); Kubernetes wants a *structural* OpenAPI v3 schema: no `$ref`,
a `type` on every node, `nullable` instead of `anyOf [..., null]`, boolean `exclusiveMinimum`, no
`additionalProperties: false` and free-form maps marked `x-kubernetes-preserve-unknown-fields`. Structural
schemas prune unknown keys instead of rejecting them, so the operator re-validates `.spec` with the same
pydantic models and fails the resource with the field named (see `resource.parse_resource`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

from feles.config import SimulationSpec
from feles_operator import names
from feles_operator.resource import FelesSimulationSpec
from feles_operator.status import FelesSimulationStatus

#: Bound on the simulation's strings that SimulationSpec leaves unbounded: the API server estimates the cost
#: of the CEL rule `self == oldSelf` from the largest value a field may hold, and rejects a too costly CRD.
MAX_STRING_LENGTH = 4096
#: Keywords that carry over unchanged into the OpenAPI schema.
KEPT_KEYWORDS = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "required",
)
IMMUTABLE_RULE = {
    "rule": "self == oldSelf",
    "message": "spec.simulation is immutable: create a new FelesSimulation to change it",
}


class SchemaError(ValueError):
    """A pydantic schema construct with no structural OpenAPI equivalent."""


def structural(schema: dict[str, Any], nullable: bool = True, max_length: int | None = None) -> dict[str, Any]:
    """A structural OpenAPI v3 schema equivalent to pydantic's JSON schema `schema` (with its `$defs`).

    With `nullable=False`, `X | None` becomes plain `X`: an explicit null is pruned, i.e. means absent.
    `max_length` bounds the strings that have no bound of their own.
    """
    definitions = schema.get("$defs", {})
    return copy.deepcopy(_convert(schema, _Context(definitions, nullable, max_length)))


@dataclass(frozen=True)
class _Context:
    definitions: dict[str, Any]
    nullable: bool
    max_length: int | None


def _resolve(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The node with `$ref` (or a one-element `allOf` of it) replaced by the definition it names."""
    node = dict(node)
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node.pop("allOf")[0], **node}
    reference = node.pop("$ref", None)
    if reference is None:
        return node
    target = definitions[reference.removeprefix("#/$defs/")]
    # Keywords beside the $ref (a field's description) win over the definition's (a class docstring).
    return {**_resolve(target, definitions), **node}


def _convert(node: dict[str, Any], context: _Context) -> dict[str, Any]:
    node = _resolve(node, context.definitions)
    is_nullable = False
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        choices = node.pop("anyOf")
        options = [option for option in choices if option.get("type") != "null"]
        is_nullable = len(options) < len(choices)
        if len(options) != 1:
            raise SchemaError(f"a union of several types has no structural schema: {options}")
        node = {**_resolve(options[0], context.definitions), **node}
    if node.get("x-kubernetes-int-or-string"):
        kept = {key: node[key] for key in ("description", "pattern") if key in node}
        result = {**kept, "anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}
        return {**result, "nullable": True} if is_nullable and context.nullable else result
    if "const" in node:
        node["enum"] = [node.pop("const")]
    result: dict[str, Any] = {key: node[key] for key in KEPT_KEYWORDS if key in node}
    if result.get("default", 0) is None:
        del result["default"]  # absent and null mean the same
    for bound, keyword in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node:
            result[keyword] = node[bound]
            result[bound] = True  # OpenAPI v3.0: a flag on minimum/maximum, not a number
    bounded = "maxLength" in result or "enum" in result
    if result.get("type") == "string" and context.max_length is not None and not bounded:
        result["maxLength"] = context.max_length
    if "x-kubernetes-validations" in node:
        result["x-kubernetes-validations"] = node["x-kubernetes-validations"]
    for key in ("x-kubernetes-list-type", "x-kubernetes-list-map-keys"):
        if key in node:
            result[key] = node[key]
    if result.get("type") == "object":
        _convert_object(node, result, context)
    if result.get("type") == "array":
        result["items"] = _convert(node["items"], context)
    if is_nullable and context.nullable:
        result["nullable"] = True
    if "type" not in result:
        raise SchemaError(f"a schema node without a type: {node}")
    return result


def _convert_object(node: dict[str, Any], result: dict[str, Any], context: _Context) -> None:
    properties = node.get("properties")
    extra = node.get("additionalProperties")
    if properties:
        result["properties"] = {key: _convert(value, context) for key, value in properties.items()}
    elif isinstance(extra, dict) and extra:
        result["additionalProperties"] = _convert(extra, context)
    elif extra is not False:
        # dict[str, Any]: whatever the user writes is kept as is (validated by the operator, not the API).
        result["x-kubernetes-preserve-unknown-fields"] = True


def simulation_schema() -> dict[str, Any]:
    """`.spec.simulation`: SimulationSpec, structural, immutable after creation."""
    schema = structural(SimulationSpec.model_json_schema(), nullable=True, max_length=MAX_STRING_LENGTH)
    schema["description"] = "The simulation spec, the same as a `feles run` YAML file (immutable)."
    schema["x-kubernetes-validations"] = [IMMUTABLE_RULE]
    return schema


def spec_schema() -> dict[str, Any]:
    """`.spec`: the operator's own fields, with `.simulation` from SimulationSpec."""
    schema = structural(FelesSimulationSpec.model_json_schema(by_alias=True), nullable=False)
    schema["properties"]["simulation"] = simulation_schema()
    return schema


def status_schema() -> dict[str, Any]:
    return structural(FelesSimulationStatus.model_json_schema(by_alias=True), nullable=False)


def printer_columns() -> list[dict[str, Any]]:
    """What `kubectl get fsim` shows (priority 1: with `-o wide`)."""
    return [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Round", "type": "string", "jsonPath": ".status.roundProgress", "description": "round/rounds"},
        {"name": "Accuracy", "type": "number", "jsonPath": ".status.accuracy", "description": "test accuracy"},
        {"name": "Loss", "type": "number", "jsonPath": ".status.loss", "description": "test loss"},
        {"name": "Workers", "type": "integer", "jsonPath": ".status.workersReady", "description": "ready workers"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Desired", "type": "integer", "jsonPath": ".spec.workers", "priority": 1},
        {"name": "Repetition", "type": "string", "jsonPath": ".status.repetitionProgress", "priority": 1},
        {
            "name": "Simulated",
            "type": "number",
            "jsonPath": ".status.simulatedTime",
            "priority": 1,
            "description": "simulated seconds",
        },
        {"name": "Reason", "type": "string", "jsonPath": ".status.stopReason", "priority": 1},
    ]


def custom_resource_definition() -> dict[str, Any]:
    """The whole CRD object."""
    root = {
        "type": "object",
        "description": "A federated learning simulation: one orchestrator and a scalable pool of workers.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {
                        "type": "string",
                        "maxLength": names.MAX_NAME_LENGTH,
                        "pattern": names.NAME_PATTERN,
                    }
                },
            },
            "spec": spec_schema(),
            "status": status_schema(),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": names.CRD_NAME,
            "labels": {"app.kubernetes.io/name": "feles", "app.kubernetes.io/part-of": "feles"},
        },
        "spec": {
            "group": names.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": names.KIND,
                "listKind": f"{names.KIND}List",
                "plural": names.PLURAL,
                "singular": names.SINGULAR,
                "shortNames": [names.SHORT_NAME],
                "categories": ["feles"],
            },
            "versions": [
                {
                    "name": names.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.workers",
                            "statusReplicasPath": ".status.workersReady",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": printer_columns(),
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


HEADER = (
    "# The FelesSimulation CRD, generated by `feles crd` from feles.config.SimulationSpec and\n"
    "# feles_operator.resource; do not edit: regenerate with `feles crd > <this file>`.\n"
)


def crd_yaml() -> str:
    """The CRD as YAML, with a header saying where it comes from."""
    return HEADER + yaml.dump(custom_resource_definition(), Dumper=_Dumper, sort_keys=False, width=120)


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no &anchors/*aliases for repeated values (kubectl users read this file)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
