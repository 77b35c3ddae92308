"""The parameter reference of docs/parameters.md, generated from SimulationSpec so the two never drift."""

from __future__ import annotations

import json
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from feles.config import SimulationSpec

BEGIN_MARKER = "<!-- BEGIN GENERATED: python -m feles.spec_reference -->"
END_MARKER = "<!-- END GENERATED -->"


def _type_name(annotation: Any) -> str:
    origin, arguments = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " or ".join(f"`{json.dumps(value)}`" for value in arguments)
    if arguments and origin is not dict:
        return " or ".join(_type_name(argument) for argument in arguments)
    if origin is dict or annotation is dict:
        return "mapping"
    return "null" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


def _bounds(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for name, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, name, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
        longest = getattr(item, "max_length", None)
        if longest is not None:
            parts.append(f"at most {longest} characters")
        pattern = getattr(item, "pattern", None)
        if pattern:
            parts.append(f"matches `{pattern}`")
    return ", ".join(parts)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "see below"
        return f"`{json.dumps(value)}`"
    return f"`{json.dumps(field.default)}`"


def _table(prefix: str, model: type[BaseModel], nested: list[tuple[str, type[BaseModel]]]) -> list[str]:
    lines = [f"### `{prefix}`", "", "| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((f"{prefix}.{name}", annotation))
            kind = "mapping"
        else:
            kind = _type_name(annotation)
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{name}` | {kind} | {_default(field)} | {_bounds(field)} | {description} |")
    return [*lines, ""]


def render() -> str:
    """Markdown tables of every section and key of SimulationSpec."""
    lines = [BEGIN_MARKER, ""]
    pending: list[tuple[str, type[BaseModel]]] = []
    for name, field in SimulationSpec.model_fields.items():
        assert field.annotation is not None
        pending.append((name, field.annotation))
    while pending:
        prefix, model = pending.pop(0)
        nested: list[tuple[str, type[BaseModel]]] = []
        lines += _table(prefix, model, nested)
        pending[0:0] = nested
    return "\n".join([*lines, END_MARKER]) + "\n"


if __name__ == "__main__":
    print(render(), end="")
