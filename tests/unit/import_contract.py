"""A layered import contract checked on the source: an `ast` walk builds the import graph, no import runs.

A contract names the layers of one package, lowest first; each layer lists members, a member being a module and
everything below it (`feles.algorithms` is the package and its submodules; a bare top-level name such as `feles`
names only its `__init__`). The rules:

- layers: a member imports only its own modules and members of lower layers;
- siblings: the members of one layer are independent (a module that needs a sibling belongs a layer higher);
- placement: every module of the package is in exactly one member, and every member names a module;
- cycles: no two modules of the package import each other, directly or through others;
- forbidden: the package never imports the `forbidden` top-level packages, at any depth of the code;
- neighbours: a neighbouring package imports only the members `neighbours` allows it, and the package reaches a
  neighbour only where `lazy_only` allows it, and then only from inside a function.

Imports inside functions count like module-level ones (they run when the function does; a lazy import that
breaks a cycle at run time is still a cycle), as do imports under `if TYPE_CHECKING:`; only `lazy_only` tells
the two apart. Each violation names the importing module, the imported module, the file and line, and the rule.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path


@dataclass(frozen=True)
class Import:
    """One imported name: `imported` is a module of a scanned package when it resolves to one, else the dotted name."""

    importer: str
    imported: str
    line: int = 0
    lazy: bool = False  # inside a function body
    path: str = ""


@dataclass(frozen=True)
class Violation:
    """A broken rule; a placement problem has no imported module and names only the module or member."""

    importer: str
    imported: str
    rule: str
    where: str = ""

    def __str__(self) -> str:
        subject = f"{self.importer} imports {self.imported}" if self.imported else self.importer
        where = f" ({self.where})" if self.where else ""
        return f"{subject}{where}: {self.rule}"


def package_modules(package: str, directory: Path) -> dict[str, Path]:
    """Module name -> file for every .py file of the package in `directory` (the folder named `package`)."""
    modules = {}
    for path in sorted(directory.rglob("*.py")):
        parts = list(path.relative_to(directory).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join([package, *parts])] = path
    return modules


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, path: Path, is_package: bool, known: Iterable[str]) -> None:
        self.module, self.path, self.is_package, self.known = module, path, is_package, set(known)
        self.imports: list[Import] = []
        self.depth = 0

    def _add(self, imported: str, node: ast.stmt) -> None:
        record = Import(self.module, imported, node.lineno, self.depth > 0, str(self.path))
        if record not in self.imports:  # `from pkg import a, b` is one import of pkg
            self.imports.append(record)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _resolve(self.module, self.is_package, node)
        for alias in node.names:
            # `from pkg import name`: the submodule pkg.name when there is one, else an attribute of pkg.
            submodule = f"{base}.{alias.name}"
            self._add(submodule if submodule in self.known else base, node)


def import_graph(packages: Mapping[str, Path]) -> tuple[dict[str, Path], list[Import]]:
    """The modules of the packages (name -> folder) and every import statement in them."""
    modules: dict[str, Path] = {}
    for package, directory in packages.items():
        modules.update(package_modules(package, directory))
    imports = []
    for module, path in modules.items():
        collector = _Collector(module, path, path.name == "__init__.py", modules)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        imports.extend(collector.imports)
    return modules, imports


def _top(module: str) -> str:
    return module.partition(".")[0]


@dataclass(frozen=True)
class Contract:
    """The layers of `package` and what it and its neighbouring packages may import of each other."""

    package: str
    layers: tuple[tuple[str, ...], ...]  # lowest first
    forbidden: tuple[str, ...] = ()  # top-level packages the package never imports
    neighbours: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # neighbour -> members it may import
    lazy_only: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # member -> neighbours, inside functions

    def member(self, module: str) -> str | None:
        """The member a module of the package belongs to: the longest member that is it or a package above it."""
        parts = module.split(".")
        for n in range(len(parts), 0, -1):
            prefix = ".".join(parts[:n])
            if (n > 1 or n == len(parts)) and prefix in self._layer_of:
                return prefix
        return None

    @cached_property
    def _layer_of(self) -> dict[str, int]:
        return {member: index for index, layer in enumerate(self.layers) for member in layer}

    def _layer_name(self, index: int) -> str:
        return " | ".join(self.layers[index])

    def check(self, modules: Iterable[str], imports: Iterable[Import]) -> list[Violation]:
        """Every violation of the contract by these modules and imports, in a stable order."""
        modules, imports = sorted(modules), list(imports)
        violations = self._placement(modules)
        for record in imports:
            rule = self._rule(record)
            if rule:
                violations.append(Violation(record.importer, record.imported, rule, f"{record.path}:{record.line}"))
        violations.extend(self._cycles(modules, imports))
        return violations

    def _placement(self, modules: list[str]) -> list[Violation]:
        ours = [module for module in modules if _top(module) == self.package]
        violations = [
            Violation(module, "", "the module is in no layer of the contract: place it in one")
            for module in ours
            if self.member(module) is None
        ]
        placed = {self.member(module) for module in ours}
        violations += [
            Violation(member, "", "a member of the contract names no module: remove or rename it")
            for member in self._layer_of
            if member not in placed
        ]
        return violations

    def _rule(self, record: Import) -> str | None:
        """The rule an import breaks, or None."""
        importer, imported = record.importer, record.imported
        if _top(importer) != self.package:
            allowed = self.neighbours.get(_top(importer))
            if allowed is None or _top(imported) != self.package or self.member(imported) in allowed:
                return None
            return f"{_top(importer)} may import only {', '.join(allowed)} of {self.package}"
        if _top(imported) in self.forbidden:
            return f"{self.package} never imports {', '.join(self.forbidden)} (not even inside a function)"
        if _top(imported) in self.neighbours:
            reachers = [member for member, packages in self.lazy_only.items() if _top(imported) in packages]
            if self.member(importer) in reachers and record.lazy:
                return None
            where = f"only from inside functions of {', '.join(reachers)}" if reachers else "never"
            return f"{self.package} imports {_top(imported)} {where}"
        if _top(imported) != self.package:
            return None  # standard library and third-party packages
        source, target = self.member(importer), self.member(imported)
        if source is None or target is None or source == target:
            return None  # unplaced modules are reported once, by _placement
        low, high = self._layer_of[target], self._layer_of[source]
        if low < high:
            return None
        if low == high:
            return f"{source} and {target} are siblings in the layer {self._layer_name(low)}: neither imports the other"
        return (
            f"{source} is in the layer {self._layer_name(high)}, below {self._layer_name(low)}: "
            "layers import only lower layers"
        )

    def _cycles(self, modules: list[str], imports: list[Import]) -> list[Violation]:
        """One violation per import cycle among the package's modules, naming its shortest loop."""
        ours = {module for module in modules if _top(module) == self.package}
        edges: dict[str, dict[str, Import]] = {module: {} for module in sorted(ours)}
        for record in imports:
            if record.importer in ours and record.imported in ours and record.importer != record.imported:
                edges[record.importer].setdefault(record.imported, record)
        violations = []
        for component in _strongly_connected(edges):
            start = min(component)
            loop = _shortest_loop(edges, start, component)
            steps = [edges[a][b] for a, b in itertools.pairwise(loop)]
            where = ", ".join(f"{Path(step.path).name}:{step.line}" for step in steps)
            rule = "import cycle " + " -> ".join(loop) + ": modules must not import each other, directly or not"
            violations.append(Violation(start, loop[1], rule, where))
        return violations


def _strongly_connected(edges: Mapping[str, Mapping[str, object]]) -> list[set[str]]:
    """Tarjan's algorithm: the components with more than one module (a module importing itself is skipped)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in edges:
        if node not in index:
            visit(node)
    return sorted(components, key=min)


def _shortest_loop(edges: Mapping[str, Mapping[str, object]], start: str, within: set[str]) -> list[str]:
    """start -> ... -> start, by breadth-first search inside one strongly connected component."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(edges[node]):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if target in within and target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start} is on no loop")
