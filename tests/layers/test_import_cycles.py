"""slim's modules import each other without cycles, counting function-local imports too.

A function-local import hides a cycle from Python's import machinery but not from the design:
orchestration (build, auto, sweep, the CLIs) sits above a library (plan, estimates, report
building and rendering, signing), and nothing below reaches back up.
"""
from __future__ import annotations

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "slim"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _target(name: str, known: dict) -> str | None:
    """The slim module ``name`` names, or its nearest enclosing slim module."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(mod: str, path: Path, known: dict) -> set[str]:
    """slim modules ``mod`` imports anywhere in its body (module level or inside functions)."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from pkg import sub`` names the submodule when there is one
            names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix
                     for a in node.names]
        else:
            continue
        for n in names:
            if n == "slim" or n.startswith("slim."):
                t = _target(n, known)
                if t and t != mod:
                    out.add(t)
    return out


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports_of(m, p, known) for m, p in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, on, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_function_local_imports():
    g = import_graph()
    # slim.build imports the planner inside run_build, not at module level
    assert "slim.plan" in g["slim.build"]
    assert "slim.steps.base" in g["slim.plan"]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_inside_slim():
    found = cycles(import_graph())
    assert not found, "import cycles inside slim/: " + "; ".join(" <-> ".join(c) for c in found)


#: orchestration: runs builds and chooses among them; nothing else may import these
ORCHESTRATION = ("slim.__main__", "slim.build", "slim.auto", "slim.sweep", "slim.studio")
#: upward edges still allowed (none: keep it so)
KNOWN_UPWARD: set[tuple[str, str]] = set()


def _is(mod: str, roots) -> bool:
    return any(mod == r or mod.startswith(r + ".") for r in roots)


def upward_edges(graph) -> set[tuple[str, str]]:
    """Imports that reach up a layer: the library into orchestration, a step into the planner
    that loads steps."""
    out = set()
    for a, targets in graph.items():
        for b in targets:
            if _is(b, ORCHESTRATION) and not _is(a, ORCHESTRATION):
                out.add((a, b))
            if _is(a, ("slim.steps",)) and b == "slim.plan":
                out.add((a, b))
    return out


def test_library_does_not_import_orchestration():
    extra = upward_edges(import_graph()) - KNOWN_UPWARD
    assert not extra, "imports reaching up a layer: " + "; ".join(f"{a} -> {b}" for a, b in sorted(extra))


def test_upward_edges_are_found():
    g = {"slim.report.x": {"slim.build"}, "slim.steps.y": {"slim.plan"}, "slim.auto": {"slim.build"}}
    assert upward_edges(g) == {("slim.report.x", "slim.build"), ("slim.steps.y", "slim.plan")}
