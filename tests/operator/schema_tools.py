"""Helpers to check a CRD the way the API server would: structural rules, then admission of objects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema

#: Keywords a structural schema node may carry (apiextensions v1).
ALLOWED = {
    "type",
    "description",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "nullable",
    "anyOf",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
}


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its dotted path."""
    yield path, node
    for key, child in (node.get("properties") or {}).items():
        yield from walk(child, f"{path}.{key}")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")


def structural_problems(schema: dict[str, Any]) -> list[str]:
    """What breaks the apiextensions rules for structural schemas (empty when none)."""
    problems = []
    for path, node in walk(schema):
        unknown = set(node) - ALLOWED
        if unknown:
            problems.append(f"{path}: keywords not allowed {sorted(unknown)}")
        int_or_string = node.get("x-kubernetes-int-or-string")
        if "type" not in node and not int_or_string and not node.get("x-kubernetes-preserve-unknown-fields"):
            problems.append(f"{path}: no type")
        if "anyOf" in node and (not int_or_string or node["anyOf"] != [{"type": "integer"}, {"type": "string"}]):
            problems.append(f"{path}: anyOf only for int-or-string")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: properties and additionalProperties together")
        if node.get("additionalProperties") is False:
            problems.append(f"{path}: additionalProperties: false")
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            if bound in node and not isinstance(node[bound], bool):
                problems.append(f"{path}: {bound} must be a boolean (OpenAPI v3.0)")
        if node.get("x-kubernetes-list-type") == "map":
            required = set(node["items"].get("required", []))
            if not set(node["x-kubernetes-list-map-keys"]) <= required:
                problems.append(f"{path}: list-map keys must be required")
        if "default" in node:
            try:
                jsonschema.validate(node["default"], to_json_schema(node))
            except jsonschema.ValidationError as error:
                problems.append(f"{path}: default does not validate: {error.message}")
    return problems


def to_json_schema(node: Any) -> Any:
    """An OpenAPI v3.0 (Kubernetes) schema as JSON Schema draft 7, for jsonschema to validate with."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("nullable", "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys"):
            continue
        if key in ("properties",):
            result[key] = {name: to_json_schema(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties", "anyOf"):
            result[key] = to_json_schema(value)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            continue
        else:
            result[key] = value
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(bound) is True:
            result[bound] = result.pop(limit)
    if node.get("nullable") and "type" in result:
        result["type"] = [result["type"], "null"]
    if node.get("x-kubernetes-int-or-string"):
        # The quantity pattern only applies to strings.
        pattern = result.pop("pattern", None)
        result["anyOf"] = [{"type": "integer"}, {"type": "string", **({"pattern": pattern} if pattern else {})}]
    return result


def admission_errors(crd: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """Schema errors the API server would report for `obj`, as "<field path>: <message>"."""
    schema = to_json_schema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    validator = jsonschema.Draft7Validator(schema)
    return sorted(
        f"{'.'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(obj)
    )
