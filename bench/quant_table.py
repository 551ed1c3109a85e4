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

#: the k-quant/legacy series (the direction check runs over these, largest first)
KQUANTS = ["q8_0", "q6_k", "q5_k_m", "q4_k_m", "q3_k_m", "q2_k"]
#: llama.cpp's IQ types (non-linear / lattice codebooks), each beside the k-quant of its size
IQ = ["iq4_nl", "iq4_xs", "iq3_m", "iq3_xxs", "iq2_m", "iq2_xs"]
TYPES = KQUANTS + IQ
PUBLISHED = {  # llama.cpp tools/perplexity README, Llama-3-8B vs F16, WikiText-2, ctx 512
    "q8_0": (8.50, 1.0004, 0.00136), "q6_k": (6.56, 1.0032, 0.00545), "q5_k_m": (5.70, 1.0091, 0.0108),
    "q4_k_m": (4.89, 1.028, 0.0313), "q3_k_m": (None, 1.105, 0.1019), "q2_k": (3.16, 1.565, 0.4451),
    # same scoreboard, imatrix "WT 10m" rows; PPL ratio = PPL / f16's 6.233160; bpw from the
    # GiB column over Llama-3-8B's 8.03e9 parameters
    "iq4_nl": (4.65, 1.0357, 0.0357), "iq4_xs": (4.43, 1.0363, 0.0363),
    "iq3_m": (3.78, 1.1067, 0.1025), "iq3_xxs": (3.26, 1.1966, 0.1836),
    "iq2_m": (2.93, 1.3799, 0.3260), "iq2_xs": (None, None, None)}
HAND = "## Reading it"   # the hand-written part of the doc from this heading on is kept


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/gguf_quant_table.md")
    ap.add_argument("--builds", default="builds")
    ap.add_argument("--types", default=",".join(TYPES), help="comma-separated methods")
    a, overrides = ap.parse_known_args()
    types = a.types.split(",")
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import slim.config  # noqa: F401
    from slim.build import run_build
    from slim.hardware.deployed import deployed
    from slim.hardware.estimate import estimate_weights
    from slim.models.gguf_header import read_gguf_header
    from slim.paths import CONF
    from slim.planview import model_arch
    rows = []
    for t in types:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides + [
                f"method={t}", "probes.categories=[]", f"paths.builds={a.builds}"])
        t0 = time.time()
        out = run_build(cfg, quiet=True)
        r = json.loads((out / "report.json").read_text())
        f = r["metrics"]["fidelity"]
        # plan=true's size model (no weights) against the tensor bytes llama.cpp wrote
        est = estimate_weights(*deployed(OmegaConf.to_container(cfg.method, resolve=True),
                                         model_arch(cfg)))["bytes"]
        built = sum(x.n_bytes for x in read_gguf_header(out / "model.gguf")[1])
        r["_est"] = (est, built)
        rows.append((t, r, f, time.time() - t0))
        print(f"{t:8} {r['artifact']['bytes'] / 1e6:7.1f} MB  KLD {f['kld_mean']:.5f}  "
              f"size model {est / built:.4f}", file=sys.stderr)
        write(a, overrides, rows)   # after each type: a long sweep stopped early keeps its rows


def write(a, overrides: list[str], rows: list) -> None:
    rows = sorted(rows, key=lambda x: -x[1]["artifact"]["bytes"])
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
        "| type | file MB | bpw | PPL ratio | mean KLD ± se | p99 KLD | top-1 | plan=true size / built | published (Llama-3-8B): bpw / PPL ratio / KLD |",
        "|---|---|---|---|---|---|---|---|---|"]
    for t, r, f, _ in rows:
        pb = PUBLISHED.get(t, (None, None, None))
        est, built = r["_est"]
        lines.append(f"| {t.upper()} | {r['artifact']['bytes'] / 1e6:.1f} | {r['artifact']['bpw']:.2f} | "
                     f"{f['ppl_ratio']:.4f} | {f['kld_mean']:.5f} ± {f['kld_mean_stderr']:.5f} | "
                     f"{f['kld_p99']:.4f} | {100 * f['top1_agreement']:.2f}% | {est / built:.4f} | "
                     f"{pb[0] or '–'} / {pb[1] or '–'} / {pb[2] or '–'} |")
    krows = [x for x in rows if x[0] in KQUANTS]
    kl = [f["kld_mean"] for _, _, f, _ in krows]
    sz = [r["artifact"]["bytes"] for _, r, _, _ in krows]
    mono_k = all(a <= b for a, b in zip(kl, kl[1:]))
    mono_s = all(a >= b for a, b in zip(sz, sz[1:]))
    breaks = [f"{a[0].upper()} KLD {a[2]['kld_mean']:.5f} > {b[0].upper()} {b[2]['kld_mean']:.5f}"
              for a, b in zip(krows, krows[1:]) if a[2]["kld_mean"] > b[2]["kld_mean"]]
    lines += ["", f"Direction check (as in the published table, k-quant series): KLD rises monotonically from Q8_0 to "
                  f"Q2_K: **{'yes' if mono_k else 'no'}**"
                  + (f" (out of order: {'; '.join(breaks)})" if breaks else "")
                  + f"; file size falls monotonically: **{'yes' if mono_s else 'no'}**.", "",
              "Notes: SmolLM2-135M's 576-wide rows are not multiples of 256, so llama.cpp falls back "
              "to legacy types for many tensors (see `artifact.tensor_types` in each report; the IQ "
              "types' 256-wide blocks fall back to IQ4_NL, so only the 1536-wide `ffn_down` keeps "
              "the named IQ type); bpw is therefore higher than the type's nominal bits. \"plan=true "
              "size / built\" is the weight-free size model's tensor bytes over the file's. Its weights were distributed as Q4_1, "
              "so requantizing is gentler than from true 16-bit weights. Small models lose more than "
              "8B models at the same type; compare directions and ratios, never absolute PPL."]
    iq = [x for x in rows if x[0] in IQ]
    if iq and krows:
        lines += ["", "IQ types against the k-quant nearest in file size (mean KLD ratio IQ / k-quant, "
                      "size ratio):"]
        for t, r, f, _ in iq:
            k = min(krows, key=lambda x: abs(x[1]["artifact"]["bytes"] - r["artifact"]["bytes"]))
            lines.append(f"- {t.upper()} vs {k[0].upper()}: size {r['artifact']['bytes'] / k[1]['artifact']['bytes']:.3f}, "
                         f"KLD {f['kld_mean'] / k[2]['kld_mean']:.3f}")
    out = Path(a.out)
    old = out.read_text() if out.is_file() else ""
    hand = old[old.index(HAND):] if HAND in old else ""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n" + ("\n" + hand if hand else ""))
    print(f"wrote {out} ({len(rows)} types)", file=sys.stderr)


if __name__ == "__main__":
    main()
