"""method=fit against llama.cpp's presets at the same file size, side by side in one run.

On the default model (SmolLM2-135M-Instruct; the parent's F16 GGUF, importance matrix and
fidelity windows from the slim cache, built into it first):

1. ``q4_k_m`` and ``q3_k_m`` are built as usual (``probes.categories=[]``: fidelity only);
2. ``method=fit method.target_bytes=<that preset's file bytes>`` is built for each;
3. every GGUF — the presets, the fits and the hand-made mix from issue 22 (Q4_K_M with
   attn_q/attn_k IQ4_NL and attn_v Q8_0) — is scored against the F16 parent in one pass over
   the same windows (llama.cpp, one parent pass per window, llama-perplexity's KLD), and the
   table prints file bytes, mean KLD ± stderr and the fit/preset ratios, with the fits'
   predicted bytes and KLD beside the measured ones.

``--calibrate`` first measures the cost model's per-kind sensitivity and writes
``slim/compress/fit_sensitivity.json``: all tensors Q8_0 (pure) as the floor, then for each
tensor kind one GGUF with that kind at ``--probe-type`` (Q4_0: legal at every row length of
the model) and the rest Q8_0; s_kind = (KLD_kind − KLD_floor) / Σ_kind (NSR(probe) − NSR(Q8_0)),
NSR from the ``gguf_errors`` step (ggml's quantizer with the importance matrix). The prior NSR
per type (weight-free plans) is the median over the model's tensors where the type is legal.

Usage: python bench/fit.py [--calibrate] [--out docs/fit.md] [--builds DIR] [hydra overrides]
       (threads=1 by default: on a shared 2-core box)
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HAND_MIX = {r"attn_q\.weight$": "IQ4_NL", r"attn_k\.weight$": "IQ4_NL", r"attn_v\.weight$": "Q8_0"}


@functools.lru_cache(maxsize=1)
def _eval_module():
    spec = importlib.util.spec_from_file_location("bench_eval", ROOT / "bench" / "eval.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def compose(overrides):
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    import slim.config  # noqa: F401
    from slim.paths import CONF
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hcompose(config_name="config", overrides=list(overrides))


def run_steps(cfg, ids):
    """Run (or take from the cache) the given steps of cfg's plan; {id: output folder}."""
    from slim.build import open_store
    from slim.executor import EventLog, Executor
    from slim.plan import Planner, ancestors
    plan = Planner(cfg).build()
    ex = Executor(open_store(cfg), EventLog(None), cfg.threads or 1)
    res = ex.run({k: plan.steps[k] for k in ancestors(plan.steps, ids)})
    return {k: Path(res[k].entry.data) for k in ids}, plan


def quantize(f16: Path, out: Path, imatrix: Path, type_: str, tensor_types: dict, pure: bool,
             threads: int) -> Path:
    """llama_model_quantize through the quantize_gguf step's own function; its chatter to a log."""
    from slim.steps.quantize_gguf import Params, quantize as q
    with _eval_module().c_stderr_to(out.with_suffix(".log")):
        q(f16, out, Params(type=type_, imatrix=True, pure=pure, tensor_types=tensor_types),
          threads, imatrix)
    return out


def calibrate(cfg, base, work: Path, probe_type: str, threads: int, windows: int) -> dict:
    import numpy as np

    from slim.compress.fit_cost import SENSITIVITY_FILE, kind
    from slim.compress.gguf_error import legal, synthetic_nsr
    from slim.plan import f16_gguf_of
    out, plan = run_steps(cfg, ["gguf_errors:import_parent", "fidelity_reference"])
    errors = json.loads((out["gguf_errors:import_parent"] / "errors.json").read_text())
    ref = work / "ref"   # the first `windows` fidelity windows (the box's time is the limit)
    ref.mkdir()
    np.save(ref / "tokens.npy", np.load(out["fidelity_reference"] / "tokens.npy")[:windows])
    paths, _ = run_steps(cfg, [f16_gguf_of(plan.parent).step, "imatrix:import_parent"])
    f16 = paths[f16_gguf_of(plan.parent).step] / "model.gguf"
    im = paths["imatrix:import_parent"] / "imatrix.npz"
    kinds = sorted({kind(n) for n in errors["tensors"]})
    nsr = {n: {t: v["error"] / t_["signal"] for t, v in t_["types"].items()}
           for n, t_ in errors["tensors"].items()}
    bad = [n for n in nsr if probe_type not in nsr[n] or "Q8_0" not in nsr[n]]
    if bad:
        raise SystemExit(f"--probe-type {probe_type} is not legal for {bad[:3]}")
    children = {"floor": quantize(f16, work / "floor.gguf", im, "Q8_0", {}, True, threads)}
    for k in kinds:
        children[k] = quantize(f16, work / f"{k}.gguf", im, "Q8_0",
                               {rf"(^|\.){k}\.weight$": probe_type}, True, threads)
    t0 = time.time()
    kl = base.kld_of(children, f16, ref, threads)
    print(f"calibration KLDs measured in {time.time() - t0:.0f} s", file=sys.stderr)
    floor = kl["floor"]["kld_mean"]
    sens, rows = {}, []
    for k in kinds:
        members = [n for n in nsr if kind(n) == k]
        d_nsr = sum(nsr[n][probe_type] - nsr[n]["Q8_0"] for n in members)
        d_kld = kl[k]["kld_mean"] - floor
        sens[k] = max(d_kld, 0.0) / d_nsr
        rows.append((k, len(members), kl[k]["kld_mean"], kl[k]["kld_mean_stderr"], d_nsr, sens[k]))
    floor_model = floor - sum(sens[kind(n)] * nsr[n]["Q8_0"] for n in nsr)
    prior = {}
    for t in errors["candidates"]:
        vals = [nsr[n][t] for n, e in errors["tensors"].items() if t in nsr[n]
                and legal(t, e["cols"], e["imatrix"])]
        if vals:
            prior[t] = float(np.median(vals))
    data = {"source": (f"bench/fit.py --calibrate {time.strftime('%Y-%m-%d')}: {cfg.model.name}, "
                       f"{kl['floor']['tokens']} tokens of {cfg.probes.fidelity.corpus}; each kind at "
                       f"{probe_type}, the rest Q8_0; KLD floor (all Q8_0) {floor:.6f}"),
            "probe_type": probe_type,
            "kld_per_nsr": {k: round(v, 6) for k, v in sens.items()},
            "kld_floor": round(floor_model, 6),
            "measured": {k: {"tensors": n, "kld": round(m, 6), "kld_stderr": round(s, 6),
                             "sum_nsr_delta": round(dn, 6)} for k, n, m, s, dn, _ in rows},
            "nsr_prior": {t: float(f"{v:.4g}") for t, v in synthetic_nsr(errors["candidates"]).items()},
            "nsr_prior_source": "ggml's error on seeded Student-t (nu=5) weights, log-normal "
                                "importance (slim.compress.gguf_error.synthetic_nsr)",
            "nsr_median_this_model": {t: float(f"{v:.4g}") for t, v in prior.items()}}
    SENSITIVITY_FILE.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {SENSITIVITY_FILE}", file=sys.stderr)
    return {"floor": kl["floor"], "rows": rows, "data": data}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/fit.md")
    ap.add_argument("--builds", default=str(Path(tempfile.gettempdir()) / "slim-bench-fit"))
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--probe-type", default="Q4_0")
    ap.add_argument("--calib-windows", type=int, default=2,
                    help="fidelity windows scored per calibration GGUF (512 tokens each)")
    ap.add_argument("--no-compare", action="store_true", help="with --calibrate: only calibrate")
    ap.add_argument("--variants", action="store_true",
                    help="also build the hand-made mix and a fit without Q4_1/Q5_1 candidates")
    a, overrides = ap.parse_known_args()
    if not any(o.startswith("threads=") for o in overrides):
        overrides.append("threads=1")
    common = overrides + ["probes.categories=[]", f"paths.builds={a.builds}"]
    base = _eval_module()
    from slim.build import run_build
    from slim.plan import f16_gguf_of
    work = Path(tempfile.mkdtemp(prefix="bench-fit-"))
    cal = None
    if a.calibrate:
        cfg = compose(common + ["method=fit", "method.target_bytes=1000000000"])
        cal = calibrate(cfg, base, work, a.probe_type, cfg.threads or 1, a.calib_windows)
        from slim.compress import fit_cost
        fit_cost.shipped.cache_clear()
        if a.no_compare:
            return
    t0 = time.time()
    rows = {}
    for preset in ("q4_k_m", "q3_k_m"):
        out = run_build(compose(common + [f"method={preset}"]), quiet=True)
        rows[preset] = json.loads((out / "report.json").read_text())
        target = rows[preset]["artifact"]["bytes"]
        out = run_build(compose(common + ["method=fit", f"method.target_bytes={target}",
                                          f"build_name=fit-at-{preset}"]), quiet=True)
        rows[f"fit@{preset}"] = json.loads((out / "report.json").read_text())
    build_s = time.time() - t0
    cfg = compose(common + ["method=q4_k_m"])
    paths, plan = run_steps(cfg, [f16_gguf_of(plan_parent(cfg)).step, "imatrix:import_parent",
                                  "fidelity_reference"])
    f16 = paths[f16_gguf_of(plan.parent).step] / "model.gguf"
    hand = quantize(f16, work / "hand_mix.gguf", paths["imatrix:import_parent"] / "imatrix.npz",
                    "Q4_K_M", HAND_MIX, False, cfg.threads or 1)
    ggufs = {k: Path(a.builds) / r["build"] / "model.gguf" if (Path(a.builds) / r["build"]).is_dir()
             else None for k, r in rows.items()}
    for k, r in rows.items():
        if ggufs[k] is None:
            ggufs[k] = next(Path(a.builds).glob(f"*{r['build']}*/model.gguf"))
    ggufs["hand mix"] = hand
    t0 = time.time()
    kl = base.kld_of(ggufs, f16, paths["fidelity_reference"], cfg.threads or 1)
    kld_s = time.time() - t0
    sizes = {k: p.stat().st_size for k, p in ggufs.items()}
    lines = table(rows, kl, sizes, cal, build_s, kld_s, overrides)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plan_parent(cfg):
    from slim.plan import Planner
    return Planner(cfg).build().parent


def table(rows, kl, sizes, cal, build_s, kld_s, overrides) -> list[str]:
    r0 = rows["q4_k_m"]
    env = r0["environment"]
    f0 = kl["q4_k_m"]
    lines = [f"# method=fit vs llama.cpp presets at equal file size ({r0['parent']['id']})", "",
             f"Measured {time.strftime('%Y-%m-%d')} with `python bench/fit.py "
             f"{' '.join(overrides)}` on a {env['host']['cores']}-core CPU, llama-cpp-python "
             f"{env['libraries']['llama-cpp-python']}. Every GGUF scored against the parent's F16 "
             f"GGUF in one pass over the same {f0['tokens']} tokens (fidelity windows of "
             f"`data/eval/heldout.txt`, second half of each scored, llama-perplexity's KLD); "
             f"importance matrix from the shipped calibration corpus (128 × 512 tokens) for all.",
             "", "| GGUF | file bytes | vs preset | mean KLD ± se | KLD ratio vs preset | PPL ratio | "
                 "top-1 | predicted bytes | predicted KLD | types |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in ("q4_k_m", "fit@q4_k_m", "hand mix", "q3_k_m", "fit@q3_k_m"):
        f = kl[name]
        pre = "q3_k_m" if "q3" in name else "q4_k_m"
        rep = rows.get(name)
        al = (rep or {}).get("artifact", {}).get("allocation") or {}
        hist = (rep or {}).get("artifact", {}).get("tensor_types") or {}
        lines.append(
            f"| {name} | {sizes[name]} | {sizes[name] / sizes[pre]:.4f} | {f['kld_mean']:.5f} ± "
            f"{f['kld_mean_stderr']:.5f} | {f['kld_mean'] / kl[pre]['kld_mean']:.3f} | "
            f"{f['ppl_ratio']:.4f} | {100 * f['top1_agreement']:.2f}% | "
            f"{al.get('predicted_bytes', '–')} | "
            f"{'%.5f' % al['predicted_kld'] if al else '–'} | "
            f"{' '.join(f'{t}×{n}' for t, n in sorted(hist.items())) if hist else 'Q4_K_M + attn_q/k IQ4_NL, attn_v Q8_0'} |")
    for pre in ("q4_k_m", "q3_k_m"):
        fit, p = kl[f"fit@{pre}"], kl[pre]
        ok_size = sizes[f"fit@{pre}"] <= sizes[pre]
        ratio = fit["kld_mean"] / p["kld_mean"]
        need = 0.75 if pre == "q4_k_m" else 0.80
        lines.append("")
        lines.append(f"- fit@{pre}: file {'≤' if ok_size else '>'} {pre}'s; KLD ratio {ratio:.3f} "
                     f"(target ≤ {need}: **{'met' if ratio <= need and ok_size else 'NOT met'}**)")
    lines += ["", f"Build time of the four builds {build_s:.0f} s (cached steps included), "
                  f"scoring {kld_s:.0f} s."]
    for pre in ("q4_k_m", "q3_k_m"):
        al = rows[f"fit@{pre}"]["artifact"].get("allocation") or {}
        if al:
            lines += ["", f"### Allocation of fit@{pre} ({al['budget_how']})", "",
                      "| tensor kind | types by layer |", "|---|---|"]
            for k, ts in al["by_layer"].items():
                from slim.report.allocation import _runs
                lines.append(f"| {k} | {_runs(ts)} |")
    if cal:
        d = cal["data"]
        lines += ["", "## Sensitivity calibration (`--calibrate`)", "",
                  f"{d['source']}. s = (KLD − floor) / Σ ΔNSR; written to "
                  f"`slim/compress/fit_sensitivity.json`.", "",
                  "| kind | tensors | KLD (kind at probe type) ± se | Σ ΔNSR | s (KLD per NSR) |",
                  "|---|---|---|---|---|"]
        for k, n, m, s, dn, sv in cal["rows"]:
            lines.append(f"| {k} | {n} | {m:.5f} ± {s:.5f} | {dn:.4f} | {sv:.5f} |")
    return lines


if __name__ == "__main__":
    main()
