"""Sweep GGUF quant types on one model and write the size/KLD table to docs/.

Every member shares the cache (parent import, F16 conversion, imatrix, reference log-probs).
Usage: python bench/quant_table.py [--out docs/gguf_quant_table.md] [hydra overrides]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

TYPES = ["q8_0", "q6_k", "q5_k_m", "q4_k_m", "q3_k_m", "q2_k"]
PUBLISHED = {  # llama.cpp tools/perplexity README, Llama-3-8B vs F16, WikiText-2, ctx 512
    "q8_0": (8.50, 1.0004, 0.00136), "q6_k": (6.56, 1.0032, 0.00545), "q5_k_m": (5.70, 1.0091, 0.0108),
    "q4_k_m": (4.89, 1.028, 0.0313), "q3_k_m": (None, 1.105, 0.1019), "q2_k": (3.16, 1.565, 0.4451)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/gguf_quant_table.md")
    ap.add_argument("--builds", default="builds")
    a, overrides = ap.parse_known_args()
    from hydra import compose, initialize_config_dir

    import slim.config  # noqa: F401
    from slim.build import run_build
    from slim.paths import CONF
    rows = []
    for t in TYPES:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides + [
                f"method={t}", "probes.categories=[]", f"paths.builds={a.builds}"])
        t0 = time.time()
        out = run_build(cfg, quiet=True)
        r = json.loads((out / "report.json").read_text())
        f = r["metrics"]["fidelity"]
        rows.append((t, r, f, time.time() - t0))
        print(f"{t:8} {r['artifact']['bytes'] / 1e6:7.1f} MB  KLD {f['kld_mean']:.5f}", file=sys.stderr)
    r0, f0 = rows[0][1], rows[0][2]
    nf = r0["metrics"].get("noise_floor") or {}
    lines = [
        f"# GGUF quant types on {r0['parent']['id']}", "",
        f"Measured {time.strftime('%Y-%m-%d')} with `python bench/quant_table.py "
        f"{' '.join(overrides)}` on a {r0['environment']['host']['cores']}-core CPU "
        f"({r0['environment']['host']['cpu']}), llama-cpp-python "
        f"{r0['environment']['libraries']['llama-cpp-python']}.", "",
        f"Fidelity: child GGUF vs the parent's F16 GGUF, both in llama.cpp, on "
        f"`data/eval/heldout.txt` — {f0['chunks']} windows of {f0['n_ctx']} tokens, second half "
        f"of each scored ({f0['tokens']} tokens), llama-perplexity's KLD method. Importance matrix "
        f"from the shipped calibration corpus (128 × 512 tokens) for every type but Q8_0.",
        f"Cross-runtime noise floor (F16 GGUF in llama.cpp vs the HF parent in torch): KLD "
        f"{nf.get('kld_mean', float('nan')):.6f}, top-1 {100 * nf.get('top1_agreement', float('nan')):.2f}%.", "",
        "| type | file MB | bpw | PPL ratio | mean KLD ± se | p99 KLD | top-1 | published (Llama-3-8B): bpw / PPL ratio / KLD |",
        "|---|---|---|---|---|---|---|---|"]
    for t, r, f, _ in rows:
        pb = PUBLISHED[t]
        lines.append(f"| {t.upper()} | {r['artifact']['bytes'] / 1e6:.1f} | {r['artifact']['bpw']:.2f} | "
                     f"{f['ppl_ratio']:.4f} | {f['kld_mean']:.5f} ± {f['kld_mean_stderr']:.5f} | "
                     f"{f['kld_p99']:.4f} | {100 * f['top1_agreement']:.2f}% | "
                     f"{pb[0] or '–'} / {pb[1]} / {pb[2]} |")
    kl = [f["kld_mean"] for _, _, f, _ in rows]
    sz = [r["artifact"]["bytes"] for _, r, _, _ in rows]
    mono_k = all(a <= b for a, b in zip(kl, kl[1:]))
    mono_s = all(a >= b for a, b in zip(sz, sz[1:]))
    breaks = [f"{a[0].upper()} KLD {a[2]['kld_mean']:.5f} > {b[0].upper()} {b[2]['kld_mean']:.5f}"
              for a, b in zip(rows, rows[1:]) if a[2]["kld_mean"] > b[2]["kld_mean"]]
    lines += ["", f"Direction check (as in the published table): KLD rises monotonically from Q8_0 to "
                  f"Q2_K: **{'yes' if mono_k else 'no'}**"
                  + (f" (out of order: {'; '.join(breaks)})" if breaks else "")
                  + f"; file size falls monotonically: **{'yes' if mono_s else 'no'}**.", "",
              "Notes: SmolLM2-135M's 576-wide rows are not multiples of 256, so llama.cpp falls back "
              "to legacy types for many tensors (see `artifact.tensor_types` in each report); bpw "
              "is therefore higher than the type's nominal bits. Its weights were distributed as Q4_1, "
              "so requantizing is gentler than from true 16-bit weights. Small models lose more than "
              "8B models at the same type; compare directions and ratios, never absolute PPL."]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
