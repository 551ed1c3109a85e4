"""The short summary printed at the end of a build."""
from __future__ import annotations

from slim.report.gates import failed_gates, undecided_gates
from slim.report.headline import HEADLINE_LABEL, headline_retention
from slim.units import fmt_bytes

import json
from pathlib import Path


def print_summary(build_dir: Path) -> None:
    r = json.loads((build_dir / "report.json").read_text())
    a, fid = r["artifact"], (r.get("metrics") or {}).get("fidelity")
    lines = [f"\n{r['build']}: {r['status'].upper()}",
             f"  size   {fmt_bytes(a['bytes'])}, {a.get('bpw') or 0:.2f} bpw ({a['format']})"]
    if fid:
        lines.append(f"  fidelity  PPL ratio {fid['ppl_ratio']:.4f}, KLD {fid['kld_mean']:.5f} "
                     f"± {fid['kld_mean_stderr']:.5f}, top-1 {100 * fid['top1_agreement']:.1f}% "
                     f"({fid['tokens']} tokens)")
        kv = fid.get("kv_cache")
        if kv:
            vp, vf = kv["vs_parent"], kv["vs_f16_kv"]
            lines.append(f"  kv_cache={kv['type']}  KLD vs parent {vp['kld_mean']:.5f} "
                         f"± {vp['kld_mean_stderr']:.5f}, vs the same build with f16 KV "
                         f"{vf['kld_mean']:.5f} ± {vf['kld_mean_stderr']:.5f}")
    pr = (r.get("metrics") or {}).get("probes")
    if pr:
        head = headline_retention(r)
        lines.append(f"  probes {HEADLINE_LABEL} "
                     f"{'–' if head is None else f'{head:.2f}'}, leaks {pr['leaks_child']}")
    fit = r.get("fit")
    if fit:
        lines.append(f"  fit    {'fits' if fit['fits'] else 'DOES NOT FIT'} {r['target']['hardware']} "
                     f"(headroom {fmt_bytes(fit['headroom_bytes'])})")
    if failed_gates(r):
        lines.append("  failed gates: " + "; ".join(failed_gates(r)))
    if r["status"] == "inconclusive":
        lines.append("  undecided gates: " + "; ".join(undecided_gates(r)))
    if r["status"] == "ungated":
        lines.append("  ungated: the probe suite has no gates")
    sig = r.get("signature") or {}
    lines.append(f"  signed {'yes, key ' + sig['key_id'] if sig.get('signed') else 'no'}")
    lines.append(f"  build  {build_dir}")
    print("\n".join(lines))
