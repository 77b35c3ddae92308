"""A generic CRD generator: a kind's pydantic models in, its CustomResourceDefinition (and YAML) out.

pydantic emits JSON Schema (draft 2020-12); Kubernetes wants a *structural* OpenAPI v3 schema: no `$ref`,
a `type` on every node, `nullable` instead of `anyOf [..., null]`, boolean `exclusiveMinimum`, no
`additionalProperties: false` and free-form maps marked `x-kubernetes-preserve-unknown-fields`. Structural
schemas prune unknown keys instead of rejecting them, so the operator re-validates `.spec` with the same
pydantic models and fails the resource with the field named (see `simulation.resource.parse_resource`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import yaml

from feles_operator import names

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


class SchemaError(ValueError):
    """A pydantic schema construct with no structural OpenAPI equivalent."""


def structural(schema: dict[str, Any], nullable: bool = True, max_length: int | None = None) -> dict[str, Any]:
    """A structural OpenAPI v3 schema equivalent to pydantic's JSON schema `schema` (with its `$defs`).

    With `nullable=False`, `X | None` becomes plain `X`: an explicit null is pruned, i.e. means absent.
    `max_length` bounds the strings that have no bound of their own.
    """
    definitions = schema.get("$defs", {})
    context = _Context(definitions=definitions, nullable=nullable, max_length=max_length)
    return copy.deepcopy(_convert(schema, context))


@dataclass(frozen=True, kw_only=True)
class _Context:
    """What the conversion carries down the tree: the definitions `$ref` names, and the two options."""

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
    if node.get("x-kubernetes-preserve-unknown-fields") and "type" not in node:
        # Any JSON value (e.g. a sweep's axis values): kept as is, validated by the operator.
        return {
            **{key: node[key] for key in ("description",) if key in node},
            "x-kubernetes-preserve-unknown-fields": True,
        }
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


@dataclass(frozen=True, kw_only=True)
class KindNames:
    """How the API names one kind of this group (the CRD's `.spec.names` and its version)."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ("feles",)
    version: str = names.VERSION

    @property
    def crd_name(self) -> str:
        return names.crd_name(self.plural)


@dataclass(frozen=True, kw_only=True)
class KindSchema:
    """What one kind's CRD says beyond its names: the schema of its object and the subresources it has."""

    description: str
    #: The object's `.metadata` schema (e.g. a bound on `.metadata.name`); None: the API server's own.
    metadata: dict[str, Any] | None
    spec: dict[str, Any]
    status: dict[str, Any]
    subresources: dict[str, Any] = field(default_factory=lambda: {"status": {}})
    printer_columns: list[dict[str, Any]] = field(default_factory=list)


def custom_resource_definition(kind: KindNames, schema: KindSchema) -> dict[str, Any]:
    """The whole CRD object of a namespaced kind with one served and stored version."""
    properties: dict[str, Any] = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}}
    if schema.metadata is not None:
        properties["metadata"] = schema.metadata
    properties |= {"spec": schema.spec, "status": schema.status}
    root = {"type": "object", "description": schema.description, "required": ["spec"], "properties": properties}
    version: dict[str, Any] = {"name": kind.version, "served": True, "storage": True}
    version["subresources"] = schema.subresources
    if schema.printer_columns:
        version["additionalPrinterColumns"] = schema.printer_columns
    version["schema"] = {"openAPIV3Schema": root}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/name": "feles", "app.kubernetes.io/part-of": "feles"},
        },
        "spec": {
            "group": names.GROUP,
            "scope": "Namespaced",
            "names": _names(kind),
            "versions": [version],
        },
    }


def _names(kind: KindNames) -> dict[str, Any]:
    spelled: dict[str, Any] = {"kind": kind.kind, "listKind": f"{kind.kind}List"}
    spelled |= {"plural": kind.plural, "singular": kind.singular}
    if kind.short_names:
        spelled["shortNames"] = list(kind.short_names)
    if kind.categories:
        spelled["categories"] = list(kind.categories)
    return spelled


def to_yaml(definition: dict[str, Any], header: str) -> str:
    """A CRD as YAML, after a header saying where it comes from."""
    return header + yaml.dump(definition, Dumper=_Dumper, sort_keys=False, width=120)


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no &anchors/*aliases for repeated values (kubectl users read this file)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
