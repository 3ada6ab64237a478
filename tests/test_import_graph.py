"""The import graph of ``unroll`` and ``theory`` has no circles.

Every ``import`` statement of every module counts, at module level and inside functions (a lazy import still
ties the two modules together); ``from unroll import construct_unrolled`` counts as an import of the module that
``unroll.__getattr__`` loads for it (``unroll._LAZY``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import unroll

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("unroll", "theory")


def project_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is_package)}`` of every module under ``root/package``."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _containing_module(name: str, modules: dict) -> str | None:
    """``name`` or its longest prefix that is a project module (``import a.b.c`` imports ``a.b.c``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES, lazy: dict[str, dict[str, str]] | None = None
                 ) -> dict[str, set[str]]:
    """``{module: project modules it imports}``; ``lazy`` maps a package to its ``{name: module}`` table."""
    modules = project_modules(root, packages)
    lazy = lazy or {}
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(filter(None, (_containing_module(alias.name, modules) for alias in node.names)))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    if alias.name in lazy.get(source, {}):
                        targets.add(lazy[source][alias.name])
                    elif f"{source}.{alias.name}" in modules:
                        targets.add(f"{source}.{alias.name}")
                    elif (module := _containing_module(source, modules)) is not None:
                        targets.add(module)
        targets.discard(name)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle ``[a, b, ..., a]`` of ``graph``, or ``None`` (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def _graph() -> dict[str, set[str]]:
    return import_graph(ROOT, lazy={"unroll": dict(unroll._LAZY)})


def test_the_import_graph_of_unroll_and_theory_has_no_circle():
    cycle = find_cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_walker_sees_function_level_relative_and_lazy_imports():
    graph = _graph()
    assert "unroll.experiments.sweeps" in graph["unroll.experiments.compare"]  # inside run_comparison
    assert "unroll.experiments.relu" in graph["unroll.experiments.models"]  # inside build_model
    # sweeps has `from unroll import construct_unrolled`
    assert "unroll.construction.constructor" in graph["unroll.experiments.sweeps"]
    assert "theory.bounds" in graph["theory"]  # the package's own re-exports
    assert len(graph) > 50 and all(module.startswith(PACKAGES) for module in graph)


def test_a_circle_through_function_level_imports_is_found(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("import os\n\ndef f():\n    from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def g():\n    from .c import h\n")
    (package / "sub" / "c.py").write_text("from .. import a\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.c"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.sub.c", "pkg.a"]
    (package / "sub" / "c.py").write_text("def h():\n    pass\n")
    assert find_cycle(import_graph(tmp_path, ("pkg",))) is None
