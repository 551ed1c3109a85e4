"""Report sections for methods that change the model's shape: distillation and low-rank.

Distillation is only worth its compute if the distilled student beats the same pruned
student without it, so the section puts teacher (parent), undistilled student and
distilled student side by side — each measured by the same runtime on the same tokens
and prompts as the child — with the training record and parameter counts. Low-rank
artifacts are stored dense, so the section says what a factored runtime would hold.
"""
from __future__ import annotations

import json
from pathlib import Path

from slim.units import fmt_bytes


def _json(resolved, sid, name):
    if sid is None or sid not in resolved:
        return None
    p = resolved[sid].entry.data / name
    return json.loads(p.read_text()) if p.is_file() else None


def _stage_json(plan, resolved, name: str):
    """The record ``name`` (distill.json, student.json, lowrank.json: what a stage writes about
    itself) of the method's first stage that wrote one, or None — found by what a stage wrote,
    not by its kind."""
    return next((d for a in plan.stages if (d := _json(resolved, a.step, name)) is not None), None)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()
               and p.suffix in (".gguf", ".safetensors"))


def _teacher_bytes(plan, resolved, fmt: str) -> int | None:
    """Size of the parent in the child's format (its F16 GGUF, or its 16-bit HF weights)."""
    from slim.plan import f16_gguf_of, input_path
    art = f16_gguf_of(plan.parent) if fmt == "gguf" else plan.parent
    if art.step not in resolved:
        return None
    return _size(input_path(resolved, art))


def _paired_kld_gain(resolved, fid_sid: str | None, base_sid: str | None) -> dict | None:
    """Per-token KLD(undistilled) − KLD(distilled) on the same eval tokens, with its stderr."""
    import numpy as np
    if not (fid_sid and base_sid and fid_sid in resolved and base_sid in resolved):
        return None
    a = resolved[base_sid].entry.data / "per_token.npz"
    b = resolved[fid_sid].entry.data / "per_token.npz"
    if not (a.is_file() and b.is_file()):
        return None
    d = np.load(a)["kld"] - np.load(b)["kld"]
    n = len(d)
    return {"mean": float(d.mean()), "stderr": float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else None,
            "tokens": int(n), "note": "paired over the same eval tokens; tokens within a window "
                                      "are correlated, so the stderr is optimistic"}


def distillation_section(plan, resolved, artifact: dict) -> dict | None:
    """Teacher vs undistilled vs distilled student, or None for methods without ``distill``."""
    from slim.plan import input_path
    train = _stage_json(plan, resolved, "distill.json")
    base = plan.baselines.get("undistilled")
    if train is None or base is None:
        return None
    student = _stage_json(plan, resolved, "student.json")
    fid_u = _json(resolved, plan.evals.get("fidelity_undistilled"), "fidelity.json")
    par = _json(resolved, plan.evals.get("probes_parent"), "probes.json")
    pu = _json(resolved, plan.evals.get("probes_undistilled"), "probes.json")
    cats_u = None
    if par and pu:
        from slim.probes.scoring import score_categories
        cats_u = score_categories(par["results"], pu["results"])
    curve = [[s["step"], round(s["loss"], 6), s.get("mode")] for s in train["steps"]]
    return {
        "teacher": {"n_params": train["params_teacher"],
                    "bytes": _teacher_bytes(plan, resolved, artifact["format"])},
        "undistilled": {"step": base.step, "format": base.format,
                        "bytes": _size(input_path(resolved, base)),
                        "n_params": train["params_student"], "fidelity": fid_u,
                        "probes": {"categories": cats_u} if cats_u is not None else None},
        "distilled": {"step": plan.artifact.step, "format": artifact["format"],
                      "bytes": artifact["bytes"], "n_params": train["params_student"]},
        "kld_gain": _paired_kld_gain(resolved, plan.evals.get("fidelity"),
                                     plan.evals.get("fidelity_undistilled")),
        "student": student,
        "training": {k: v for k, v in train.items() if k != "steps"},
        "loss_curve": curve,
    }


def lowrank_section(plan, resolved) -> dict | None:
    """Ranks and parameter counts of a ``lowrank`` stage (per-layer detail stays in the cache)."""
    lr = _stage_json(plan, resolved, "lowrank.json")
    if lr is None:
        return None
    return {k: lr[k] for k in ("selection", "whiten", "storage", "layers_matched",
                               "layers_factored", "params_before", "params_after",
                               "params_on_disk", "params_ratio", "mean_energy_kept",
                               "target_params_before", "target_params_after") if k in lr}


# -- markdown ---------------------------------------------------------------------------------

def _f(v, fmt):
    return fmt.format(v) if isinstance(v, (int, float)) else "–"


_mb = fmt_bytes


def render_distillation(r: dict) -> list[str]:
    d = (r.get("metrics") or {}).get("distillation")
    if not d:
        return []
    m = r["metrics"]
    fc, fu = m.get("fidelity") or {}, d["undistilled"].get("fidelity") or {}
    t, u, c = d["teacher"], d["undistilled"], d["distilled"]
    out = ["", "## Distillation: teacher vs undistilled vs distilled student", "",
           f"The undistilled student is the same pruned student (`{u['step']}`) taken through the "
           f"same later stages without distillation; all three measured in "
           f"{fc.get('runtime_child', '–')} on the same tokens and prompts.", "",
           "| | teacher (parent) | undistilled student | distilled student |", "|---|---|---|---|",
           f"| parameters | {_f(t['n_params'] / 1e6, '{:.1f}M')} | "
           f"{_f(u['n_params'] / 1e6, '{:.1f}M')} | {_f(c['n_params'] / 1e6, '{:.1f}M')} |",
           f"| size ({c['format']}; teacher F16) | {_mb(t.get('bytes'))} | {_mb(u.get('bytes'))} | "
           f"{_mb(c.get('bytes'))} |"]
    if fc:
        out += [f"| PPL | {_f(fc.get('ppl_parent'), '{:.3f}')} | {_f(fu.get('ppl_child'), '{:.3f}')} | "
                f"{_f(fc.get('ppl_child'), '{:.3f}')} |",
                f"| mean KLD to teacher | 0 | {_f(fu.get('kld_mean'), '{:.4f}')} | "
                f"{_f(fc.get('kld_mean'), '{:.4f}')} |",
                f"| top-1 agreement | 100% | {_f(100 * fu['top1_agreement'] if fu else None, '{:.2f}%')} | "
                f"{_f(100 * fc.get('top1_agreement', 0), '{:.2f}%')} |"]
    cats_c = ((m.get("probes") or {}).get("categories")) or {}
    cats_u = ((u.get("probes") or {}).get("categories")) or {}
    for cat in sorted(set(cats_c) | set(cats_u)):
        sc, su = cats_c.get(cat, {}), cats_u.get(cat, {})
        out.append(f"| probe {cat} (n={sc.get('n', su.get('n', '–'))}) | "
                   f"{_f(sc.get('parent_score', su.get('parent_score')), '{:.2f}')} | "
                   f"{_f(su.get('child_score'), '{:.2f}')} | {_f(sc.get('child_score'), '{:.2f}')} |")
    g = d.get("kld_gain")
    if g:
        out += ["", f"KLD gain from distillation (undistilled − distilled, paired per token): "
                    f"{g['mean']:+.4f} ± {_f(g['stderr'], '{:.4f}')} over {g['tokens']} tokens."]
    tr, st = d["training"], d.get("student") or {}
    s = tr.get("settings", {})
    out += ["", f"- student: {st.get('layers_before', '–')} → {st.get('layers_after', '–')} layers "
                f"({st.get('layer_selection', '–')}; dropped {st.get('dropped_layers', '–')}), MLP "
                f"width {st.get('mlp_width_before', '–')} → {st.get('mlp_width_after', '–')}",
            f"- training: {tr['engine']}, {s.get('max_steps')} steps × {s.get('batch_size')}, "
            f"λ={s.get('lmbda')} ({tr.get('on_policy_steps')} on-policy steps), β={s.get('beta')}, "
            f"lr {s.get('learning_rate')}, seed {s.get('seed')}; {tr.get('train_examples')} "
            f"prompt/continuation pairs from the calibration set",
            f"- loss (mean of first / last {tr.get('loss_window')} steps): "
            f"{_f(tr.get('loss_first'), '{:.4f}')} → {_f(tr.get('loss_last'), '{:.4f}')}",
            f"- KLD(teacher‖student) on {tr.get('holdout_windows')} calibration windows held out of "
            f"training (torch): {_f(tr.get('kld_holdout_before'), '{:.4f}')} → "
            f"{_f(tr.get('kld_holdout_after'), '{:.4f}')}",
            f"- time: {_f(tr.get('wall_seconds'), '{:.0f}')} s wall ({_f(tr.get('train_seconds'), '{:.0f}')} s "
            f"training, {_f(tr.get('seconds_per_step'), '{:.2f}')} s/step, {tr.get('threads')} threads)"]
    return out


def render_lowrank(r: dict) -> list[str]:
    lr = (r.get("artifact") or {}).get("lowrank")
    if not lr:
        return []
    sel = ", ".join(f"{k}={v}" for k, v in (lr.get("selection") or {}).items())
    return ["", "## Low-rank factorisation", "",
            f"- truncated SVD ({sel}, whiten={lr.get('whiten')}): {lr.get('layers_factored')}/"
            f"{lr.get('layers_matched')} selected Linear layers factored",
            f"- parameters: {lr['params_before'] / 1e6:.2f}M before → {lr['params_after'] / 1e6:.2f}M "
            f"as factors (×{lr['params_ratio']:.3f}); on disk {lr['params_on_disk'] / 1e6:.2f}M",
            f"- mean spectral energy kept: {_f(lr.get('mean_energy_kept'), '{:.3f}')}",
            f"- storage: {lr.get('storage')}"]
