"""Installs where users are (issue 12.11, 12.12): Python 3.11-3.13, a torch range, CI in a fresh venv."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirement(name: str, requirements: list[str]) -> Requirement:
    return next(req for req in map(Requirement, requirements) if req.name == name)


def test_python_3_11_to_3_13_are_supported() -> None:
    supported = SpecifierSet(PROJECT["requires-python"])
    assert all(python in supported for python in ("3.11", "3.12", "3.13")), supported


def test_torch_is_a_range_that_keeps_the_installed_torch() -> None:
    torch = _requirement("torch", PROJECT["dependencies"]).specifier
    assert not any(spec.operator in ("==", "===", "~=") for spec in torch), f"torch pinned: {torch}"
    assert "2.3" in torch and "2.2.2" not in torch and "3.0" not in torch
    installed = Version(version("torch")).public  # 2.13.0+cpu counts as 2.13.0
    assert torch.contains(installed), f"the installed torch {installed} is outside {torch}"


def test_ci_constraints_stay_inside_the_projects_ranges() -> None:
    torch = _requirement("torch", PROJECT["dependencies"]).specifier
    pins = dict(
        line.split("==") for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines() if "==" in line
    )
    assert torch.contains(pins["torch"].strip())


def test_ci_installs_into_a_fresh_venv_with_the_constraints_and_pytest_stays_below_9_2() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"python3 -m venv ", script) and "-c .ci/constraints.txt" in script
    pytest = _requirement("pytest", PROJECT["optional-dependencies"]["test"]).specifier
    assert "9.1.9" in pytest and "9.2.0" not in pytest


def test_ci_removes_the_venv_it_made_on_exit() -> None:
    # Every CI run on one machine otherwise leaves 2.5 GB in /tmp; 31 of them filled the disk.
    script = (ROOT / ".ci" / "run").read_text()
    made = script.index('ci_tmp="$(mktemp -d)"')
    removed = script.index("trap 'rm -rf \"$ci_tmp\"' EXIT")
    assert made < removed < script.index('python3 -m venv "$venv"')
    assert 'venv="$ci_tmp/venv"' in script


def test_readme_says_how_to_get_the_cpu_only_torch() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in readme
    assert "uv pip install torch --index-url https://download.pytorch.org/whl/cpu" in readme
