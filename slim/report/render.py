"""report.json -> report.md: the human view, with how every number was measured."""
from __future__ import annotations


def _mb(b):
    return f"{b / 1e6:.1f} MB" if b is not None else "–"


def _f(v, fmt="{:.4f}"):
    return fmt.format(v) if isinstance(v, (int, float)) else "–"


def render_markdown(r: dict) -> str:
    t, a, m = r["target"], r["artifact"], r.get("metrics", {})
    out = [f"# {r['build']}", "",
           f"**Status: {r['status']}**" + (f" — failed gates: {'; '.join(r['gates']['failed'])}"
                                            if r["gates"].get("failed") else ""), "",
           f"Model `{t['model']}` · method `{t['method']}` · hardware `{t['hardware']}` · "
           f"probes `{t['probes']}`", "",
           "## Parent", "",
           f"- id: `{r['parent']['id']}`  digest: `{r['parent']['digest']}`",
           f"- provenance: {r['parent'].get('provenance') or '–'}", "",
           "## Artifact", "",
           f"- format: {a['format']}, {_mb(a['bytes'])} on disk, "
           f"{_f(a.get('bpw'), '{:.2f}')} bits per weight (tensor data), engine: {a.get('engine')}"]
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
    nf = m.get("noise_floor")
    if nf:
        out += ["", f"Cross-runtime noise floor (parent F16 GGUF in llama.cpp vs parent in torch): "
                    f"KLD {_f(nf['kld_mean'], '{:.6f}')}, top-1 {_f(100 * nf['top1_agreement'], '{:.2f}')}%, "
                    f"PPL ratio {_f(nf['ppl_ratio'])}."]
    pr = m.get("probes")
    if pr:
        out += ["", "## Probes (parent → child, same prompts, greedy)", "",
                "| category | n | parent | child | delta | retention | 95% CI child | flipped ✗ / ✓ |",
                "|---|---|---|---|---|---|---|---|"]
        for cat, s in sorted(pr["categories"].items()):
            ci = s.get("child_ci") or s.get("child_interval") or []
            out.append(f"| {cat} | {s['n']} | {_f(s['parent_score'], '{:.2f}')} | "
                       f"{_f(s['child_score'], '{:.2f}')} | {_f(s['delta'], '{:+.2f}')} | "
                       f"{_f(s.get('retention'), '{:.2f}')} | "
                       f"{'–' if len(ci) != 2 else f'{ci[0]:.2f}–{ci[1]:.2f}'} | "
                       f"{len(s.get('flipped_to_fail', []))} / {len(s.get('flipped_to_pass', []))} |")
        out.append("")
        out.append(f"Leaks in child outputs: {pr['leaks_child']}"
                   + (f" ({', '.join(pr['leak_items_child'][:10])})" if pr["leak_items_child"] else ""))
    le = m.get("lm_eval")
    if le:
        out += ["", "## lm-eval", "", "| task/metric | parent | child | retention |", "|---|---|---|---|"]
        for k, v in le["tasks"].items():
            out.append(f"| {k} | {_f(v['parent'])} | {_f(v['child'])} | {_f(v['retention'], '{:.3f}')} |")
    from slim.report.compare import render_distillation, render_lowrank
    out += render_distillation(r) + render_lowrank(r)
    fit = r.get("fit")
    if fit:
        out += ["", f"## Fit on {t['hardware']}", "",
                f"- **{'fits' if fit['fits'] else 'does NOT fit'}**; headroom "
                f"{fit['headroom_bytes'] / 2**30:.2f} GiB",
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
    out += ["", "## Steps", "", "| step | key | cached | seconds |", "|---|---|---|---|"]
    for s in r["steps"]:
        out.append(f"| {s['id']} | `{s['key'][:16]}` | {'yes' if s['cached'] else 'no'} | "
                   f"{_f(s['seconds'], '{:.1f}')} |")
    out += ["", f"Verify: `python -m slim.verify builds/{r['build']}`", ""]
    return "\n".join(out)
