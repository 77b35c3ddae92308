"""docs/parameters.md carries the generated reference of every spec key."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from feles.config import SimulationSpec
from feles.spec_reference import render

DOC = Path(__file__).parents[2] / "docs" / "parameters.md"


def _leaf_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths += _leaf_paths(annotation, f"{prefix}{name}.")
        else:
            paths.append(f"{prefix}{name}")
    return paths


def test_parameters_doc_is_up_to_date() -> None:
    assert render() in DOC.read_text(), "regenerate with: python -m feles.spec_reference"


def test_every_key_is_documented_with_a_description() -> None:
    reference = render()
    for path in _leaf_paths(SimulationSpec):
        section, _, key = path.rpartition(".")
        assert f"### `{section}`" in reference
        row = next(line for line in reference.splitlines() if line.startswith(f"| `{key}` |"))
        assert row.rstrip(" |").split("|")[-1].strip(), f"{path} has no description"
