"""The package's import graph has no cycle, and the layers import only downwards (DESIGN.md section 5).

The graph is read from the source with ``ast``: every ``import`` and ``from ... import`` of a module counts, at
module level and inside functions and ``if TYPE_CHECKING:`` blocks alike (a function-level import that closes a
cycle is a cycle all the same, only a later one). ``from pkg import name`` counts as an edge to ``pkg`` (its
``__init__`` runs) and, when ``name`` is a submodule, to that submodule. Being a submodule of a package is not an
edge by itself.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import camforensics

PACKAGE = Path(camforensics.__file__).parent


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted name -> file of every module of the package under ``root`` (``root`` is the package folder)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: from the module's package, one level up per extra dot
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    return [source, *(f"{source}.{alias.name}" for alias in node.names)]


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its file (other packages are left out)."""
    modules = module_names(root, package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(name, path.name == "__init__.py", node):
                    while target and target not in modules:  # an imported name inside a module: the module
                        target = target.rpartition(".")[0]
                    if target and target != name:
                        deps.add(target)
        graph[name] = deps
    return graph


def find_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative), each sorted: every
    import cycle lies inside one of them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return sorted(cycles)


def test_the_package_has_no_import_cycle():
    graph = import_graph(PACKAGE, "camforensics")
    assert len(graph) > 100 and "camforensics.pipelines.anonymize.batch" in graph  # the walk saw the package
    assert find_cycles(graph) == []


def test_find_cycles_finds_a_cycle_and_only_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}, "e": set()}) == [["a", "b"], ["c", "d"]]
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []  # a diamond is no cycle
    assert find_cycles({}) == []


def test_a_function_level_import_that_closes_a_cycle_is_found(tmp_path):
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from toy.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import c\n")
    (pkg / "c.py").write_text("import os\nfrom toy.a import something\n")
    graph = import_graph(pkg, "toy")
    assert graph["toy.a"] == {"toy.sub", "toy.sub.b"} and graph["toy.sub.b"] == {"toy", "toy.c"}
    assert find_cycles(graph) == [["toy.a", "toy.c", "toy.sub.b"]]
    (pkg / "c.py").write_text("import os\n")  # the cycle broken
    assert find_cycles(import_graph(pkg, "toy")) == []


# Which layers a layer may import (DESIGN.md section 5: cli -> pipelines -> {io, core, inference} -> reports).
ALLOWED = {
    "errors": set(),
    "runtime": {"errors"},
    "reports": {"errors", "runtime"},
    "core": {"errors", "runtime"},
    "io": {"errors", "core", "reports"},
    "inference": {"errors", "core", "io", "reports"},
    "accel": {"errors", "core"},
    "sim": {"errors", "core", "io", "reports"},
    "training": {"errors", "core", "io", "inference", "reports"},
    "pipelines": {"errors", "core", "io", "inference", "reports", "accel", "sim", "training", "runtime"},
    "cli": {"errors", "core", "io", "inference", "reports", "accel", "sim", "training", "pipelines", "runtime"},
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_layers_import_only_downwards():
    graph = import_graph(PACKAGE, "camforensics")
    upward = sorted(
        f"{m} -> {d}"
        for m, deps in graph.items()
        for d in deps
        if _layer(m) in ALLOWED and _layer(d) not in ALLOWED[_layer(m)] | {_layer(m), ""}
    )
    assert upward == []
