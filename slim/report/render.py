"""report.json -> report.md: the human view, with how every number was measured."""
from __future__ import annotations

from slim.report.gates import gate_outcome, status_line
from slim.units import GIB
from slim.units import fmt_bytes as _mb


def _f(v, fmt="{:.4f}"):
    return fmt.format(v) if isinstance(v, (int, float)) else "–"


def render_markdown(r: dict, plot: str | None = None) -> str:
    t, a, m = r["target"], r["artifact"], r.get("metrics", {})
    out = [f"# {r['build']}", "",
           f"**Status: {status_line(r)}**", "",
           f"Model `{t['model']}` · method `{t['method']}` · hardware `{t['hardware']}` · "
           f"probes `{t['probes']}`", "",
           "## Parent", "",
           f"- id: `{r['parent']['id']}`  digest: `{r['parent']['digest']}`",
           f"- provenance: {r['parent'].get('provenance') or '–'}",
           *([f"- imported: {r['parent']['import']['note']}"]
             if (r["parent"].get("import") or {}).get("note") else []),
           *([f"- evaluated as a {r['parent']['gguf_type']} GGUF"]
             if r["parent"].get("gguf_type") else []), "",
           "## Artifact", "",
           f"- format: {a['format']}, {_mb(a['bytes'])} on disk, "
           f"{_f(a.get('bpw'), '{:.2f}')} bits per weight (tensor data), engine: {a.get('engine')}"]
    vs = a.get("size_vs_parent")
    if vs:
        out.append(f"- {100 * vs['ratio']:.1f}% of the parent's size ({_mb(vs['child_weights_bytes'])} "
                   f"of weights vs the parent's {_mb(vs['parent_weights_bytes'])}; weight files only)")
    if a.get("tensor_types"):
        out.append("- tensor types: " + ", ".join(f"{k}×{v}" for k, v in a["tensor_types"].items()))
    fid = m.get("fidelity")
    if fid:
        out += ["", "## Fidelity vs parent", "",
                f"Measured on {fid['tokens']} tokens of `data/eval/heldout.txt` ({fid['chunks']} "
                f"windows of {fid['n_ctx']}, second half of each scored), parent in "
                f"{fid['runtime_parent']}, child in {fid['runtime_child']}: {fid['method']}.", "",
                "| metric | value |", "|---|---|",
                f"| PPL parent / child | {_f(fid['ppl_parent'], '{:.3f}')} / {_f(fid['ppl_child'], '{:.3f}')} |",
                f"| PPL ratio | {_f(fid['ppl_ratio'])} |",
                f"| mean KLD | {_f(fid['kld_mean'], '{:.5f}')} ± {_f(fid.get('kld_mean_stderr'), '{:.5f}')} |",
                f"| p99 KLD | {_f(fid['kld_p99'])} |",
                f"| top-1 agreement | {_f(100 * fid['top1_agreement'], '{:.2f}')}% |",
                f"| mean Δp | {_f(100 * fid['delta_p_mean'], '{:+.3f}')}% |"]
        kv = fid.get("kv_cache")
        if kv:
            vp, vf = kv["vs_parent"], kv["vs_f16_kv"]
            out += ["", f"With a {kv['type']} KV cache ({kv['method']}):", "",
                    f"| {kv['type']} KV | mean KLD | p99 KLD | PPL ratio | top-1 |", "|---|---|---|---|---|",
                    f"| vs parent | {_f(vp['kld_mean'], '{:.5f}')} ± {_f(vp.get('kld_mean_stderr'), '{:.5f}')} | "
                    f"{_f(vp['kld_p99'])} | {_f(vp['ppl_ratio'])} | {_f(100 * vp['top1_agreement'], '{:.2f}')}% |",
                    f"| vs this build, f16 KV | {_f(vf['kld_mean'], '{:.5f}')} ± {_f(vf.get('kld_mean_stderr'), '{:.5f}')} | "
                    f"{_f(vf['kld_p99'])} | {_f(vf['ppl_ratio'])} | {_f(100 * vf['top1_agreement'], '{:.2f}')}% |"]
    nf = m.get("noise_floor")
    if nf:
        same = {"llama.cpp": "F16 GGUF in llama.cpp",
                "onnxruntime-genai": "fp32 ONNX in onnxruntime-genai"}.get(
            nf.get("runtime_child"), f"in {nf.get('runtime_child')}")
        out += ["", f"Cross-runtime noise floor (parent {same} vs parent in torch): "
                    f"KLD {_f(nf['kld_mean'], '{:.6f}')}, top-1 {_f(100 * nf['top1_agreement'], '{:.2f}')}%, "
                    f"PPL ratio {_f(nf['ppl_ratio'])}."]
    pr = m.get("probes")
    if pr:
        conf = (r.get("gates_how") or {}).get("confidence", 0.95)
        out += ["", "## Probes (parent → child, same prompts, greedy)", "",
                f"Items: {pr['how'].get('items')}.", "",
                f"| category | n | parent | child | delta | retention | retention bounds ({conf:.0%} each) "
                "| flipped ✗ / ✓ |",
                "|---|---|---|---|---|---|---|---|"]
        for cat, s in sorted(pr["categories"].items()):
            ci = [s["ci_low"], s["ci_high"]] if s.get("ci_low") is not None else []
            out.append(f"| {cat} | {s['n']} | {_f(s['parent_score'], '{:.2f}')} | "
                       f"{_f(s['child_score'], '{:.2f}')} | {_f(s['delta'], '{:+.2f}')} | "
                       f"{_f(s.get('retention'), '{:.2f}')} | "
                       f"{'–' if len(ci) != 2 else f'{ci[0]:.2f}–{ci[1]:.2f}'} | "
                       f"{len(s.get('flipped_to_fail', []))} / {len(s.get('flipped_to_pass', []))} |")
        out.append("")
        out.append("Scores are pass rates of the programmatic checkers; retention = child/parent "
                   "with exact bounds from the flipped items (the interval the gates decide on); "
                   f"decoding: {pr['how']['decoding']}, at most {pr['how']['max_tokens']} new tokens, "
                   f"runtime {pr['how']['runtime']}.")
        gen = (pr["how"].get("generation") or {}).get("child") or {}
        if gen.get("batch_size"):
            ctxs = gen.get("contexts") or 1
            out[-1] += (f" Generated {gen['batch_size']} sequences at a time"
                        + (f" in each of {ctxs} llama.cpp contexts side by side" if ctxs > 1 else "")
                        + f" ({gen.get('mode', 'batched')}; outputs equal one-at-a-time greedy "
                        f"decoding except at float near-ties, docs/probe_batching.md).")
        if plot:
            out += ["", f"![retention per category]({plot})"]
        parent_leaks = sorted({i for s in pr["categories"].values() for i in s.get("leaks_parent_ids", [])})
        out += ["", f"Leaks in child outputs: {pr['leaks_child']}"
                + (f" ({', '.join(pr['leak_items_child'][:10])})" if pr["leak_items_child"] else "")
                + f"; PII/secret hits in parent outputs on the same prompts: {len(parent_leaks)}"
                + (f" ({', '.join(parent_leaks[:10])})" if parent_leaks else "") + "."]
    gates = r.get("gates")
    if isinstance(gates, list) and gates:
        how = r.get("gates_how") or {}
        out += ["", "## Gates", "",
                f"Each gate is decided by its interval at confidence {how.get('confidence', 0.95):g}: "
                f"{how.get('rule', 'pass when the bound clears the threshold')}.", "",
                "| gate | category | threshold | value | interval | bound | result | to decide |",
                "|---|---|---|---|---|---|---|---|"]
        for g in gates:
            o = gate_outcome(g)
            res = {"fail": "**FAIL**", "inconclusive": "*inconclusive*"}.get(o, o)
            iv = g.get("interval")
            ivs = f"{iv[0]:.4g} – {iv[1]:.4g}" if iv else "–"
            need = (f"~{g['items_to_decide']} {g.get('unit', 'items')}" if g.get("items_to_decide")
                    else "–")
            sym = {"min": "≥ ", "max": "≤ "}.get(g.get("direction"), "")
            out.append(f"| {g['name']} | {g.get('category') or '–'} | {sym}{_f(g['threshold'], '{:g}')} | "
                       f"{_f(g['value'], '{:.4g}')} | {ivs} | {_f(g.get('bound'), '{:.4g}')} | {res} | "
                       f"{need} |")
        notes = [g["detail"] for g in gates if gate_outcome(g) != "pass"]
        if notes:
            out += [""] + [f"- {d}" for d in notes]
    le = m.get("lm_eval")
    if le:
        how = m.get("lm_eval_how") or {}
        out += ["", "## lm-eval", "",
                f"lm-eval {how.get('lm_eval_version', '?')} harness, {how.get('model_kind', '?')} runtime, "
                f"limit {how.get('limit')}, seed {how.get('seed')}; documents paired by id.", "",
                "| task/metric | n | parent | child | delta | retention | retention bounds | flipped ✗ / ✓ |",
                "|---|---|---|---|---|---|---|---|"]
        for k, v in le.items():
            fl = v.get("flips") or {}
            ci = f"{v['ci_low']:.2f}–{v['ci_high']:.2f}" if v.get("ci_low") is not None else "–"
            out.append(f"| {k} | {v.get('n') or '–'} | {_f(v['parent'])} | {_f(v['child'])} | "
                       f"{_f(v.get('delta'), '{:+.3f}')} | {_f(v['retention'], '{:.3f}')} | {ci} | "
                       f"{len(fl.get('to_fail', [])) if fl else '–'} / {len(fl.get('to_pass', [])) if fl else '–'} |")
    out += render_auto(r)
    from slim.report.compare import render_distillation, render_lowrank
    out += render_distillation(r) + render_lowrank(r)
    from slim.report.allocation import render_allocation
    out += render_allocation(r)
    fit = r.get("fit")
    if fit:
        out += ["", f"## Fit on {t['hardware']}", "",
                f"- **{'fits' if fit['fits'] else 'does NOT fit'}**; headroom "
                f"{_mb(fit['headroom_bytes'])}",
                f"- {fit['formula']}"]
    est = r.get("speed_estimate")
    if est:
        out.append(f"- estimated decode on {t['hardware']}: ≤ {est['tokens_per_s_upper_bound']:.0f} "
                   f"tokens/s ({est['note']})")
    sp = r.get("speed_host")
    if sp:
        out += ["", "## Speed on this host", "",
                f"- {sp.get('runtime')}: prompt {sp['prompt_tokens_per_s']:.0f} tok/s, generation "
                f"{sp['gen_tokens_per_s']:.1f} tok/s ({sp.get('threads')} threads, "
                f"{sp.get('prompt_tokens')} prompt / {sp.get('gen_tokens')} generated tokens)"]
    out += ["", "## Steps", "", "peak RSS: the step process's maximum resident memory "
            "(GiB = 2^30 bytes); cached steps did not run here.", "",
            "| step | key | cached | seconds | peak RSS GiB |", "|---|---|---|---|---|"]
    for s in r["steps"]:
        rss = s.get("peak_rss_bytes")
        out.append(f"| {s['id']} | `{s['key'][:16]}` | {'yes' if s['cached'] else 'no'} | "
                   f"{_f(s['seconds'], '{:.1f}')} | "
                   f"{'–' if rss is None else f'{rss / GIB:.2f}'} |")
    out += ["", f"Verify: `python -m slim.verify builds/{r['build']}`", ""]
    return "\n".join(out)


def render_auto(r: dict) -> list[str]:
    """method=auto: every candidate, what happened to it, and why the winner won."""
    a = r.get("auto")
    if not a:
        return []
    out = ["", "## method=auto: candidates", "",
           f"Winner: **{a['winner']}** ({a.get('winner_status', '–')}) — {a['why']}. "
           f"Rule: {a['rule']} (fit headroom {a['headroom']:.0%}).", "",
           "| candidate | size | est. size | bpw | fits | behavioral retention | KLD | PPL ratio | status | why |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for c in a["candidates"]:
        why = ("; ".join(c.get("failed_gates") or []) or "; ".join(c.get("undecided_gates") or [])
               or c.get("reason") or "")
        out.append(f"| {c['method']}{' ✔' if c['method'] == a['winner'] else ''} | {_mb(c.get('bytes'))} | "
                   f"{_mb(c.get('estimated_bytes'))} | {_f(c.get('bpw'), '{:.2f}')} | "
                   f"{'yes' if c.get('fits') else 'no' if c.get('fits') is False else '–'} | "
                   f"{_f(c.get('retention'), '{:.3f}')} | {_f(c.get('kld_mean'), '{:.4f}')} | "
                   f"{_f(c.get('ppl_ratio'), '{:.4f}')} | {c.get('status') or 'not built'} | {why} |")
    return out
