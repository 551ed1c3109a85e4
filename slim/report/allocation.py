"""Report section for method=fit: the per-tensor allocation (types by tensor kind and layer),
its budget, and predicted vs measured size and KLD."""
from __future__ import annotations

import json
from collections import Counter

from slim.units import fmt_bytes


def allocation_section(plan, resolved, artifact: dict, metrics: dict) -> dict | None:
    sid = next((s.id for s in plan.steps.values() if s.kind == "fit_gguf"), None)
    if sid is None or sid not in resolved:
        return None
    p = resolved[sid].entry.data / "allocation.json"
    if not p.is_file():
        return None
    a = json.loads(p.read_text())
    fid = metrics.get("fidelity") or {}
    measured = artifact.get("bytes")
    got = {k: v for k, v in (artifact.get("tensor_types") or {}).items() if k != "F32"}
    want = a.get("type_histogram") or {}
    return {"budget_bytes": a["budget_bytes"], "budget_how": a["budget_how"],
            "predicted_bytes": a["predicted_file_bytes"], "measured_bytes": measured,
            "within_budget": measured is not None and measured <= a["budget_bytes"],
            "predicted_kld": a["predicted_kld"], "measured_kld": fid.get("kld_mean"),
            "measured_kld_stderr": fid.get("kld_mean_stderr"),
            "types_as_allocated": got == want, "type_histogram": want,
            "by_layer": a["by_layer"], "solver": a["solver"], "greedy_cost": a["greedy_cost"],
            "predicted_cost": a["predicted_kld_over_floor"], "kld_floor": a["kld_floor"],
            "cost_by_kind": a.get("cost_by_kind"), "sensitivity": a.get("sensitivity"),
            "sensitivity_source": a.get("sensitivity_source"),
            "how": "each tensor × legal type quantized and dequantized by ggml with the "
                   "importance matrix; cost = kind sensitivity × imatrix-weighted noise-to-signal "
                   "ratio; least total cost within the budget (integer program)"}


def _runs(types: list) -> str:
    from slim.compress.fit_cost import type_runs
    return ", ".join(f"{i}–{j} {t}" if i != j else f"{i} {t}" for i, j, t in type_runs(types))


def render_allocation(r: dict) -> list[str]:
    a = (r.get("artifact") or {}).get("allocation")
    if not a:
        return []
    kld = a.get("measured_kld")
    se = a.get("measured_kld_stderr")
    out = ["", "## Allocation (method=fit)", "",
           f"- budget: {a['budget_how']}",
           f"- size: predicted {a['predicted_bytes']} B ({fmt_bytes(a['predicted_bytes'])}), "
           f"measured {a['measured_bytes']} B: "
           f"**{'within' if a['within_budget'] else 'OVER'} the budget**",
           f"- mean KLD: predicted {a['predicted_kld']:.5f}, measured "
           + (f"{kld:.5f}" + (f" ± {se:.5f}" if se else "") if kld is not None else "–"),
           f"- types in the file {'match' if a['types_as_allocated'] else 'DO NOT match'} the "
           f"allocation: " + ", ".join(f"{t}×{n}" for t, n in sorted(a['type_histogram'].items())),
           f"- solver: {a['solver']}; sensitivity: {a.get('sensitivity_source')}", "",
           "| tensor kind | types | by layer |", "|---|---|---|"]
    for k, types in a["by_layer"].items():
        hist = Counter(t for t in types if t)
        out.append(f"| {k} | {' '.join(f'{t}×{n}' for t, n in hist.most_common())} | "
                   f"{_runs(types)} |")
    return out
