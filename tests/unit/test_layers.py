"""DESIGN's "Layers point one way", executable: the import graph of feles and feles_operator against LAYERS.

The graph comes from the source (tests/unit/import_contract.py walks the syntax trees; nothing is imported), so
the check takes a fraction of a second and needs no dependency. Layers, lowest first; the members of one layer
are siblings and never import each other:

0. what everything may use: the package root (`__version__`), the plug-in registry and parameter checks, seeds,
   logging, the API token, a process's lifetime bound to its launcher's, httpx's transport imported without trio;
1. config;
2. devices, data, models, protocol, records (the device records' Parquet format), evaluation (metrics of a
   model on a split), spec_reference (docs of config), sweep (a sweep's grid of specs, pure), original_config
   (configs written for the original FELES, translated into specs);
3. algorithms, strategies;
4. plugin_checks (builds algorithms and strategies to check a spec);
5. orchestrator, worker;
6. local (runs an orchestrator and workers), analysis (reads results files);
7. sweep_report (a sweep folder's comparison, with the analysis's figures);
8. analyze (analysis as a command's back end), sweep_local (runs a sweep's cells as local runs);
9. cli; 10. __main__.

Besides: feles never imports kopf or kubernetes, not even inside a function. feles_operator imports only
feles.config, feles.protocol and feles.sweep (a FelesSweep's grid) of the simulator. The one way feles reaches
feles_operator is an import inside a function of feles.cli (`feles crd`, `feles operator`): such a
function-level import runs only when that command does, so `feles run` and the images' orchestrator and worker
never load kopf; a module-level import there, or any import of feles_operator elsewhere in feles, is a violation.
Imports inside functions otherwise count like module-level ones, so a lazy import that hides a cycle is reported
as the cycle it is.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.unit.import_contract import Contract, Import, import_graph

Graph = tuple[dict[str, Path], list[Import]]

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"feles": ROOT / "feles", "feles_operator": ROOT / "operator" / "feles_operator"}

LAYERS = Contract(
    package="feles",
    layers=(
        (
            "feles",
            "feles.registry",
            "feles.plugin_params",
            "feles.seeding",
            "feles.logs",
            "feles.api_token",
            "feles.lifetime",
            "feles.http_transport",
        ),
        ("feles.config",),
        (
            "feles.devices",
            "feles.data",
            "feles.models",
            "feles.protocol",
            "feles.records",
            "feles.evaluation",
            "feles.spec_reference",
            "feles.sweep",
            "feles.original_config",
        ),
        ("feles.algorithms", "feles.strategies"),
        ("feles.plugin_checks",),
        ("feles.orchestrator", "feles.worker"),
        ("feles.local", "feles.analysis"),
        ("feles.sweep_report",),
        ("feles.analyze", "feles.sweep_local"),
        ("feles.cli",),
        ("feles.__main__",),
    ),
    forbidden=("kopf", "kubernetes"),
    neighbours={"feles_operator": ("feles.config", "feles.protocol", "feles.sweep")},
    lazy_only={"feles.cli": ("feles_operator",)},
)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(PACKAGES)


def test_feles_and_the_operator_keep_the_layers(graph: Graph) -> None:
    modules, imports = graph
    violations = LAYERS.check(modules, imports)
    assert not violations, "import contract (tests/unit/test_layers.py):\n" + "\n".join(map(str, violations))
    assert len(modules) > 100 and len(imports) > 500  # the walk really found the packages


def test_the_cli_reaches_the_operator_only_inside_functions(graph: Graph) -> None:
    _, imports = graph
    reached = [
        record
        for record in imports
        if record.importer.partition(".")[0] == "feles" and record.imported.partition(".")[0] == "feles_operator"
    ]
    assert reached and all(record.importer == "feles.cli" and record.lazy for record in reached)


@pytest.mark.parametrize(
    ("importer", "imported", "lazy", "rule"),
    [
        ("feles.algorithms.base", "feles.strategies.selection.base", False, "siblings in the layer"),
        ("feles.strategies.estimates", "feles.algorithms.tensors", True, "siblings in the layer"),
        ("feles.orchestrator.loop", "feles.worker.trainer", False, "siblings in the layer"),
        ("feles.worker.state", "feles.orchestrator.jobs", False, "siblings in the layer"),
        ("feles.devices", "feles.data", False, "siblings in the layer"),
        ("feles.algorithms.aggregation", "feles.plugin_checks", True, "layers import only lower layers"),
        ("feles.config", "feles.protocol", False, "layers import only lower layers"),
        ("feles.registry", "feles.config", False, "layers import only lower layers"),
        ("feles.strategies.estimates", "feles.orchestrator.state", False, "layers import only lower layers"),
        ("feles.worker.client", "feles.local", False, "layers import only lower layers"),
        ("feles.local", "feles.cli", True, "layers import only lower layers"),
        ("feles.devices", "kubernetes.client", True, "never imports kopf, kubernetes"),
        ("feles.cli", "kopf", True, "never imports kopf, kubernetes"),
        ("feles.cli", "feles_operator.crd", False, "only from inside functions of feles.cli"),
        ("feles.local", "feles_operator.main", True, "only from inside functions of feles.cli"),
        ("feles_operator.status", "feles.devices", False, "may import only feles.config, feles.protocol"),
        ("feles_operator.builders.config", "feles", False, "may import only feles.config, feles.protocol"),
        ("feles_operator.sweep.handlers", "feles.sweep_local", False, "may import only feles.config"),
        ("feles.sweep", "feles.plugin_checks", True, "layers import only lower layers"),
    ],
)
def test_the_contract_rejects(graph: Graph, importer: str, imported: str, lazy: bool, rule: str) -> None:
    modules, _ = graph
    [violation] = LAYERS.check(modules, [Import(importer, imported, 7, lazy, "x.py")])
    assert (violation.importer, violation.imported) == (importer, imported)
    assert rule in violation.rule
    assert str(violation).startswith(f"{importer} imports {imported} (x.py:7): ")


@pytest.mark.parametrize(
    ("importer", "imported", "lazy"),
    [
        ("feles.strategies.estimates", "feles.devices", False),
        ("feles.orchestrator.loop", "feles.algorithms", False),
        ("feles.cli", "feles_operator.crd", True),
        ("feles_operator.poller", "feles.protocol", False),
        ("feles.algorithms.factory", "feles.plugin_params", False),
        ("feles.plugin_checks", "feles.strategies", False),
        ("feles.orchestrator.server", "feles.plugin_checks", True),
        ("feles_operator.sweep.handlers", "feles.sweep", False),
        ("feles.analyze", "feles.sweep_report", True),
    ],
)
def test_the_contract_accepts(graph: Graph, importer: str, imported: str, lazy: bool) -> None:
    modules, _ = graph
    assert LAYERS.check(modules, [Import(importer, imported, 1, lazy)]) == []


def test_the_contract_finds_the_cycle_a_lazy_import_hides(graph: Graph) -> None:
    modules, imports = graph
    cycle = [
        Import("feles.algorithms.base", "feles.algorithms.aggregation", 170, True, "base.py"),
        Import("feles.algorithms.aggregation", "feles.algorithms.base", 11, False, "aggregation.py"),
    ]
    [violation] = LAYERS.check(modules, [*imports, *cycle])
    assert str(violation) == (
        "feles.algorithms.aggregation imports feles.algorithms.base (aggregation.py:11, base.py:170): import cycle "
        "feles.algorithms.aggregation -> feles.algorithms.base -> feles.algorithms.aggregation: "
        "modules must not import each other, directly or not"
    )


def write_package(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")


def test_the_checker_reads_real_files(tmp_path: Path) -> None:
    """A small package with one violation of each kind: the walk over files must find every one, and no more."""
    write_package(
        tmp_path,
        {
            "toy/__init__.py": "",
            "toy/base.py": "import json\nfrom toy import left  # upward\n",
            "toy/left.py": "import toy.right  # sibling\n\ndef f():\n    import kopf  # forbidden, even lazily\n",
            "toy/right.py": "from .cyc import a  # relative, downward: fine\n",
            "toy/top.py": (
                "from toy_op import main  # neighbour at module level\n\n"
                "def run():\n    from toy_op.main import go  # allowed: lazy, from toy.top\n"
            ),
            "toy/stray.py": "",
            "toy/cyc/__init__.py": "",
            "toy/cyc/a.py": "from toy.cyc import b\n",
            "toy/cyc/b.py": "class B:\n    def f(self):\n        from ..cyc.a import x  # lazy, still a cycle\n",
            "toy_op/__init__.py": "",
            "toy_op/main.py": "from toy.base import x  # allowed\nfrom toy.left import y  # not allowed\n",
        },
    )
    contract = Contract(
        package="toy",
        layers=(("toy", "toy.base", "toy.cyc"), ("toy.left", "toy.right"), ("toy.top",), ("toy.gone",)),
        forbidden=("kopf",),
        neighbours={"toy_op": ("toy.base",)},
        lazy_only={"toy.top": ("toy_op",)},
    )
    modules, imports = import_graph({"toy": tmp_path / "toy", "toy_op": tmp_path / "toy_op"})
    found = {(v.importer, v.imported, v.rule, v.where.rpartition("/")[2]) for v in contract.check(modules, imports)}
    assert found == {
        ("toy.stray", "", "the module is in no layer of the contract: place it in one", ""),
        ("toy.gone", "", "a member of the contract names no module: remove or rename it", ""),
        (
            "toy.base",
            "toy.left",
            "toy.base is in the layer toy | toy.base | toy.cyc, below toy.left | toy.right: "
            "layers import only lower layers",
            "base.py:2",
        ),
        (
            "toy.left",
            "toy.right",
            "toy.left and toy.right are siblings in the layer toy.left | toy.right: neither imports the other",
            "left.py:1",
        ),
        ("toy.left", "kopf", "toy never imports kopf (not even inside a function)", "left.py:4"),
        ("toy.top", "toy_op.main", "toy imports toy_op only from inside functions of toy.top", "top.py:1"),
        ("toy_op.main", "toy.left", "toy_op may import only toy.base of toy", "main.py:2"),
        (
            "toy.cyc.a",
            "toy.cyc.b",
            "import cycle toy.cyc.a -> toy.cyc.b -> toy.cyc.a: modules must not import each other, directly or not",
            "a.py:1, b.py:3",
        ),
    }
