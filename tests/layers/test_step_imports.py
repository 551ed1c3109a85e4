"""No step kind imports another step kind's module: what steps share lives in
slim/steps/helpers.py (or a library module), so a step can change without breaking another."""
from __future__ import annotations

import ast
from pathlib import Path

STEPS = Path(__file__).resolve().parents[2] / "slim" / "steps"


def _is_step_kind(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name)}
    return {"run", "VERSION"} <= names


def test_steps_do_not_import_each_other():
    kinds = {p.stem for p in STEPS.glob("*.py") if _is_step_kind(p)}
    assert {"llmc_oneshot", "autoround", "student", "distill"} <= kinds
    bad = []
    for kind in sorted(kinds):
        for node in ast.walk(ast.parse((STEPS / f"{kind}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for n in names:
                other = n.removeprefix("slim.steps.")
                if n.startswith("slim.steps.") and other in kinds and other != kind:
                    bad.append(f"{kind} imports {n}")
    assert not bad, "; ".join(bad)
