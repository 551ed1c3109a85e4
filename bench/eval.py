"""Evaluation speed, side by side in one run: probes, fidelity and imatrix against llama.cpp.

On the default target (SmolLM2-135M-Instruct: the parent's F16 GGUF and the Q4_K_M
child, both in llama.cpp, taken from the slim cache or built into it first):

- probes: the probe suite's items are answered by :meth:`Runtime.generate_batch`
  with ``batch_size=1`` (one at a time: the probe step before batching) and with
  ``--batch-size``, in rounds that alternate which mode goes first, so load from
  other work on a shared machine falls on both alike; printed are items/s of each
  mode, their ratio (target >= 4), and how many answers are identical. Every
  differing answer is classified by :func:`compare_greedy`: a flip at a near-tie
  of the two best tokens (float reordering) or unexplained (a bug).
- fidelity: our ``fidelity_reference`` + ``fidelity_compare`` steps vs
  ``llama-perplexity --kl-divergence-base`` + ``--kl-divergence`` on the same GGUFs,
  corpus, windows and thread count: time ratio (target <= 1.2), mean KLD, PPL
  ratio and top-1 ratios (target within 1 %), the cache bytes, and the
  cross-runtime noise floor (HF parent in torch vs F16 in llama.cpp).
- imatrix: our ``imatrix`` step vs ``llama-imatrix`` on the same calibration
  windows (decoded to text, re-tokenized by llama.cpp): time ratio (target <= 1.0),
  then Q4_K_M quantized with each matrix by the same quantizer and its KLD
  (target within 2 %).

llama.cpp's tools are looked up on PATH and in $SLIM_LLAMA_TOOLS; their columns are
skipped, with the reason, when they are absent. Step outputs go to a temporary
folder, not the cache, so each side really runs.

Usage: python bench/eval.py [--only probes,fidelity,imatrix] [--batch-size 32] [--rounds 4]
       [--items N] [--fidelity-rounds 1] [--no-noise-floor] [--imatrix-fp32]
       [--parent F16.gguf] [--child Q4_K_M.gguf]  (instead of the cache's GGUFs)
       [hydra overrides]
       (default threads=1: on a shared 2-core box llama.cpp's spinning threads
       otherwise measure the neighbours; on an idle box pass threads=2 to measure what
       `make run` does, all cores: docs/evaluation_speed.md, "Third pass")
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def compose(overrides):
    from hydra import compose as hc
    from hydra import initialize_config_dir

    import slim.config  # noqa: F401
    from slim.paths import CONF
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hc(config_name="config", overrides=overrides)


def models(cfg) -> dict[str, Path]:
    """The parent's F16 GGUF and the child artifact, from the cache (built there if missing)."""
    from slim.build import open_store
    from slim.executor import EventLog, Executor
    from slim.plan import Planner, ancestors, input_path

    planner = Planner(cfg)
    plan = planner.build()
    if plan.artifact.format != "gguf":
        sys.exit(f"bench/eval.py measures llama.cpp probes; method {cfg.method.name!r} "
                 f"makes a {plan.artifact.format} artifact")
    f16 = planner.gguf_f16(plan.parent)
    cal = planner.calibration(planner.root_parent)
    keep = ancestors(planner.steps, [f16.step, plan.artifact.step, cal])
    done = Executor(open_store(cfg), EventLog(None), cfg.threads).run(
        {k: planner.steps[k] for k in keep})
    return {"parent F16": input_path(done, f16), "child": input_path(done, plan.artifact),
            "parent HF": input_path(done, plan.parent), "calibration": done[cal].entry.data}


def measure(path: Path, items: list[dict], cfg, batch_size: int, rounds: int,
            flash_attn: bool = True) -> dict:
    from slim.probes.suite import score_item
    from slim.runtimes import open_runtime
    from slim.runtimes.agreement import compare_greedy

    n_tok = cfg.probes.max_tokens
    # both modes as the probe step runs them: flash attention on (llama.cpp's default)
    with open_runtime(path, n_ctx=2048, threads=cfg.threads, flash_attn=flash_attn) as rt:
        ids = [rt.chat_prompt_ids(it["messages"]) for it in items]
        limits = [min(n_tok, rt.n_ctx - len(p)) for p in ids]
        out = {1: [None] * len(ids), batch_size: [None] * len(ids)}
        secs = {1: 0.0, batch_size: 0.0}
        cpu = {1: 0.0, batch_size: 0.0}
        for r in range(rounds):
            part = list(range(r, len(ids), rounds))
            for b in ((1, batch_size) if r % 2 == 0 else (batch_size, 1)):
                t, c = time.perf_counter(), Clock._cpu()
                toks = rt.generate_batch([ids[i] for i in part], [limits[i] for i in part],
                                         batch_size=b)
                secs[b] += time.perf_counter() - t
                cpu[b] += Clock._cpu() - c
                for i, o in zip(part, toks):
                    out[b][i] = o
        seq, bat = out[1], out[batch_size]
        agree = compare_greedy(rt, ids, seq, bat)
        text = [(rt.detokenize(a).strip(), rt.detokenize(b).strip()) for a, b in zip(seq, bat)]
    verdicts = sum(score_item(it, a)["passed"] == score_item(it, b)["passed"]
                   for it, (a, b) in zip(items, text))
    return {"n": len(items), "seq_s": secs[1], "bat_s": secs[batch_size],
            "seq_cpu": cpu[1], "bat_cpu": cpu[batch_size],
            "prompt_tokens": sum(map(len, ids)), "gen_tokens": sum(map(len, seq)),
            "identical_text": sum(a == b for a, b in text), "same_verdict": verdicts, **agree}


# -- llama.cpp tools -------------------------------------------------------------------------
def find_tool(name: str) -> str | None:
    where = [d for d in os.environ.get("SLIM_LLAMA_TOOLS", "").split(os.pathsep) if d]
    return shutil.which(name, path=os.pathsep.join(where + [os.environ.get("PATH", "")]))


class Clock:
    """Wall and CPU seconds (this process's and its finished children's, all threads): on a
    shared box the wall time depends on the neighbours' load, the CPU time much less."""

    def __init__(self):
        self.wall = self.cpu = 0.0

    def __enter__(self):
        self._w, self._c = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self._w
        self.cpu += self._cpu() - self._c

    @staticmethod
    def _cpu() -> float:
        import resource
        me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime

    def __str__(self):
        return f"{self.wall:6.1f} s ({self.cpu:6.1f} s CPU)"


def run_tool(argv: list[str], clock: Clock) -> str:
    """Combined output of one llama.cpp tool run (its shared libs beside it), timed on clock."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        [str(Path(argv[0]).parent)] + [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p])
    with clock:
        r = subprocess.run(argv, capture_output=True, text=True, env=env)
    out = r.stdout + r.stderr
    if r.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} exited {r.returncode}: {out[-2000:]}")
    return out


def parse_kld(out: str) -> dict:
    """llama-perplexity --kl-divergence's summary: mean KLD, PPL ratio, top-1 (same top p)."""
    def num(pat):
        m = re.search(pat, out)
        return float(m.group(1)) if m else None
    return {"kld_mean": num(r"Mean\s+KLD:\s*([-\d.]+)"),
            "ppl_ratio": num(r"Mean\s+PPL\(Q\)/PPL\(base\)\s*:\s*([-\d.]+)"),
            "top1_agreement": (lambda v: v / 100 if v is not None else None)(
                num(r"Same top p:\s*([-\d.]+)")),
            "chunks": num(r"over (\d+) chunks")}


def step_ctx(kind: str, params: dict, inputs: dict, out: Path, threads: int):
    from slim.steps.base import StepContext, step_module
    mod = step_module(kind)
    out.mkdir(parents=True, exist_ok=True)
    return mod, StepContext(step_id=kind, kind=kind, params=mod.Params(**params), raw_params=params,
                            inputs=inputs, out=out, threads=threads, log=lambda *a, **k: None)


def folder_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def fidelity_section(cfg, paths: dict, work: Path, rounds: int, noise_floor: bool) -> None:
    """Our fidelity steps vs llama-perplexity --kl-divergence-base/--kl-divergence, same GGUFs,
    same corpus and windows, same threads, in alternating order."""
    import json

    from slim.paths import resolve
    fp = cfg.probes.fidelity
    corpus = resolve(fp.corpus)
    lp = find_tool("llama-perplexity")
    t = cfg.threads
    ours = {"reference": Clock(), "compare": Clock()}
    theirs = {"base": Clock(), "kld": Clock()}
    res_ours = res_theirs = None
    print(f"\nfidelity: {fp.chunks} × {fp.n_ctx} windows of {corpus.name}, threads={t}, "
          f"{rounds} round(s)")
    for r in range(rounds):
        order = ("ours", "theirs") if r % 2 == 0 else ("theirs", "ours")
        for who in order:
            if who == "ours":
                d = work / f"fid{r}"
                mod, ctx = step_ctx("fidelity_reference", {"n_ctx": fp.n_ctx, "chunks": fp.chunks},
                                    {"tokenizer": paths["parent HF"], "corpus": corpus},
                                    d / "ref", t)
                with ours["reference"]:
                    mod.run(ctx)
                mod, ctx = step_ctx("fidelity_compare",
                                    {"runtime": "llama.cpp", "model_file": paths["child"].name,
                                     "parent_file": paths["parent F16"].name},
                                    {"reference": d / "ref", "parent": paths["parent F16"].parent,
                                     "model": paths["child"].parent}, d / "fid", t)
                with ours["compare"]:
                    mod.run(ctx)
                res_ours = json.loads((d / "fid" / "fidelity.json").read_text())
                split = json.loads((d / "fid" / "timing.json").read_text())
                ref_bytes, fid_bytes = folder_bytes(d / "ref"), folder_bytes(d / "fid")
            elif lp:
                base = work / "base.kld"
                common = ["-f", str(corpus), "-c", str(fp.n_ctx), "--chunks", str(fp.chunks),
                          "-t", str(t)]   # its default batch (4 windows a decode), as users run it
                run_tool([lp, "-m", str(paths["parent F16"]), *common,
                          "--kl-divergence-base", str(base)], theirs["base"])
                out = run_tool([lp, "-m", str(paths["child"]), *common,
                                "--kl-divergence-base", str(base), "--kl-divergence"], theirs["kld"])
                res_theirs = parse_kld(out)
                base_bytes = base.stat().st_size
                base.unlink()
    o_w = (ours["reference"].wall + ours["compare"].wall) / rounds
    o_c = (ours["reference"].cpu + ours["compare"].cpu) / rounds
    print(f"  slim   fidelity_reference {ours['reference']} + fidelity_compare {ours['compare']} "
          f"over {rounds} round(s); last compare: parent eval {split['parent']:.1f} s, child "
          f"{split['child']:.1f} s, statistics {split['stats']:.1f} s; cache "
          f"{ref_bytes / 1e6:.2f} MB (windows) + {fid_bytes / 1e6:.2f} MB per compared model")
    print(f"         KLD {res_ours['kld_mean']:.6f} ± {res_ours['kld_mean_stderr']:.6f}, PPL ratio "
          f"{res_ours['ppl_ratio']:.5f}, top-1 {100 * res_ours['top1_agreement']:.3f}%, "
          f"{res_ours['tokens']} tokens")
    if not lp:
        print("  llama-perplexity: skipped (not found on PATH or in $SLIM_LLAMA_TOOLS; build it from "
              "the pinned llama-cpp-python sdist: ../shared/REFERENCE.md)")
    else:
        t_w = (theirs["base"].wall + theirs["kld"].wall) / rounds
        t_c = (theirs["base"].cpu + theirs["kld"].cpu) / rounds
        print(f"  llama-perplexity --kl-divergence-base {theirs['base']} + --kl-divergence "
              f"{theirs['kld']} over {rounds} round(s); base file {base_bytes / 1e6:.1f} MB")
        print(f"         KLD {res_theirs['kld_mean']:.6f}, PPL ratio {res_theirs['ppl_ratio']:.5f}, "
              f"top-1 {100 * res_theirs['top1_agreement']:.3f}%, {res_theirs['chunks']:.0f} chunks")
        print(f"  ratio slim / llama-perplexity, parent + child: time {o_w / t_w:.3f} wall, "
              f"{o_c / t_c:.3f} CPU (target <= 1.2); per extra child (compare step vs "
              f"--kl-divergence, which reads its {base_bytes / 1e6:.0f} MB base file instead of "
              f"re-evaluating the parent): {ours['compare'].wall / theirs['kld'].wall:.3f} wall, "
              f"{ours['compare'].cpu / theirs['kld'].cpu:.3f} CPU")
        for k, lab in (("kld_mean", "mean KLD"), ("ppl_ratio", "PPL ratio"),
                       ("top1_agreement", "top-1")):
            print(f"         {lab:9}: {res_ours[k] / res_theirs[k]:.4f} (target within 1%)")
    if noise_floor:
        d = work / "noise"
        mod, ctx = step_ctx("fidelity_compare",
                            {"runtime": "llama.cpp", "model_file": paths["parent F16"].name,
                             "parent_file": ""},
                            {"reference": windows(cfg, paths, work), "parent": paths["parent HF"],
                             "model": paths["parent F16"].parent}, d, t)
        s = time.perf_counter()
        mod.run(ctx)
        nf = json.loads((d / "fidelity.json").read_text())
        print(f"  noise floor (HF parent in torch vs F16 GGUF in llama.cpp): KLD {nf['kld_mean']:.3g}, "
              f"top-1 {100 * nf['top1_agreement']:.2f}%, {time.perf_counter() - s:.1f} s, "
              f"{folder_bytes(d) / 1e6:.2f} MB")
        print(f"  cache bytes per parent for fidelity (windows + noise floor): "
              f"{(ref_bytes + folder_bytes(d)) / 1e6:.2f} MB (target <= 20)")


def windows(cfg, paths: dict, work: Path) -> Path:
    """The fidelity windows (the fidelity section's, or made here)."""
    from slim.paths import resolve
    d = work / "fid0" / "ref"
    if not (d / "tokens.npy").is_file():
        fp = cfg.probes.fidelity
        mod, ctx = step_ctx("fidelity_reference", {"n_ctx": fp.n_ctx, "chunks": fp.chunks},
                            {"tokenizer": paths["parent HF"], "corpus": resolve(fp.corpus)}, d, 1)
        mod.run(ctx)
    return d


def imatrix_from_gguf(path: Path, out_npz: Path) -> None:
    """llama-imatrix's GGUF output (``<name>.in_sum2`` and ``<name>.counts``) as our npz of
    per-column means (expert-major; experts without tokens get ones, as our step does)."""
    import numpy as np
    from gguf import GGUFReader
    t = {x.name: np.asarray(x.data, dtype=np.float64) for x in GGUFReader(str(path)).tensors}
    arrays = {}
    for n in t:
        if not n.endswith(".in_sum2"):
            continue
        name = n[: -len(".in_sum2")]
        c = t[name + ".counts"].reshape(-1)
        s = t[n].reshape(len(c), -1)
        m = np.ones_like(s)
        m[c > 0] = s[c > 0] / c[c > 0, None]
        arrays[name] = m.reshape(-1).astype(np.float32)
    np.savez(out_npz, **arrays)


@contextlib.contextmanager
def c_stderr_to(path: Path):
    """Send file descriptor 2 (what C libraries write) to ``path`` for the duration."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as f:
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def kld_of(children: dict[str, Path], parent: Path, ref_dir: Path, threads: int) -> dict:
    """Mean KLD (and PPL ratio, top-1) of each child GGUF vs the parent on the fidelity windows,
    with one parent pass per window."""
    import numpy as np

    from slim.metrics.fidelity import scored_positions, summarise, window_stats
    from slim.runtimes import open_runtime
    tokens = np.load(ref_dir / "tokens.npy")
    a, b = scored_positions(tokens.shape[1])
    parts = {k: {} for k in children}
    with open_runtime(str(parent), n_ctx=tokens.shape[1], threads=threads) as prt:
        rts = {k: open_runtime(str(p), n_ctx=tokens.shape[1], threads=threads)
               for k, p in children.items()}
        try:
            for w in tokens:
                pl = np.array(prt.logits(w.tolist())[a:b])
                for k, rt in rts.items():
                    for n, v in window_stats(pl, rt.logits(w.tolist())[a:b], w[a + 1:b + 1]).items():
                        parts[k].setdefault(n, []).append(v)
        finally:
            for rt in rts.values():
                rt.close()
    return {k: summarise({n: np.concatenate(v) for n, v in p.items()}) for k, p in parts.items()}


def imatrix_section(cfg, paths: dict, work: Path, fp32: bool) -> None:
    """Our imatrix step vs llama-imatrix on the same calibration windows, same threads; then
    Q4_K_M quantized (by our quantize step's function) with each matrix, and its KLD."""
    import numpy as np
    from transformers import AutoTokenizer

    from slim.steps.quantize_gguf import Params as QParams, quantize
    t = cfg.threads
    cal = paths["calibration"]
    tokens = np.load(cal / "tokens.npy")
    n, L = tokens.shape
    print(f"\nimatrix: {n} × {L} calibration tokens, threads={t}")
    mats = {}
    variants = [("slim bf16", {})] + ([("slim fp32", {"dtype": "float32"})] if fp32 else [])
    for name, extra in variants:
        d = work / name.replace(" ", "_")
        mod, ctx = step_ctx("imatrix", extra, {"calibration": cal, "model": paths["parent HF"],
                                               "f16": paths["parent F16"].parent}, d, t)
        with Clock() as c:
            mod.run(ctx)
        mats[name] = (c, d / "imatrix.npz")
        print(f"  {name:16} {c}  (batch {ctx.params.batch_size}, LM head skipped)")
    li = find_tool("llama-imatrix")
    if not li:
        print("  llama-imatrix: skipped (not found on PATH or in $SLIM_LLAMA_TOOLS; build it from "
              "the pinned llama-cpp-python sdist: ../shared/REFERENCE.md)")
    else:
        tok = AutoTokenizer.from_pretrained(str(paths["parent HF"]))
        text = work / "calibration.txt"
        text.write_text("".join(tok.decode(w.tolist()) for w in tokens), encoding="utf-8")
        c = Clock()
        out = run_tool([li, "-m", str(paths["parent F16"]), "-f", str(text), "-c", str(L),
                        "--chunks", str(n), "-t", str(t), "-o", str(work / "llama-imatrix.gguf")], c)
        imatrix_from_gguf(work / "llama-imatrix.gguf", work / "llama-imatrix.npz")
        mats["llama-imatrix"] = (c, work / "llama-imatrix.npz")
        ntok = re.search(r"computing over (\d+) chunks", out)
        print(f"  {'llama-imatrix':16} {c}  (same text re-tokenized by llama.cpp; "
              f"{ntok.group(1) if ntok else '?'} chunks; computes its PPL too, its default)")
        for name in mats:
            if name != "llama-imatrix":
                print(f"  time ratio {name} / llama-imatrix: {mats[name][0].wall / c.wall:.3f} wall, "
                      f"{mats[name][0].cpu / c.cpu:.3f} CPU (target <= 1.0)")
    children = {}
    for name, (_, npz) in mats.items():
        out = work / f"q4km_{name.replace(' ', '_')}.gguf"
        with c_stderr_to(work / "quantize.log"):   # llama.cpp's per-tensor fallback warnings
            quantize(paths["parent F16"], out, QParams(type="Q4_K_M"), t, npz)
        children[name] = out
    res = kld_of(children, paths["parent F16"], windows(cfg, paths, work), t)
    for name, r in res.items():
        print(f"  Q4_K_M with {name:14} imatrix: KLD {r['kld_mean']:.6f} ± {r['kld_mean_stderr']:.6f}, "
              f"PPL ratio {r['ppl_ratio']:.5f}, top-1 {100 * r['top1_agreement']:.2f}%")
    if "llama-imatrix" in res:
        for name in res:
            if name != "llama-imatrix":
                print(f"  KLD ratio {name} / llama-imatrix: "
                      f"{res[name]['kld_mean'] / res['llama-imatrix']['kld_mean']:.4f} (target within 2%)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds (items split evenly)")
    ap.add_argument("--items", type=int, default=0,
                    help="about N items, as 8 runs of consecutive items spread over the suite")
    ap.add_argument("--no-flash-attn", dest="flash_attn", action="store_false",
                    help="probes without flash attention (the probe step's flash_attn=false)")
    ap.add_argument("--parent", type=Path, help="a parent GGUF to use instead of the cache's")
    ap.add_argument("--child", type=Path, help="a child GGUF to use instead of the cache's")
    ap.add_argument("--only", default="probes,fidelity,imatrix",
                    help="comma list of sections: probes, fidelity, imatrix")
    ap.add_argument("--fidelity-rounds", type=int, default=1,
                    help="fidelity runs per side (alternating which side goes first)")
    ap.add_argument("--no-noise-floor", action="store_true", help="skip the torch-vs-llama.cpp run")
    ap.add_argument("--imatrix-fp32", action="store_true",
                    help="also run our imatrix step in fp32 (the exact path) and its Q4_K_M KLD")
    a, overrides = ap.parse_known_args()
    if not any(o.startswith("method=") for o in overrides):
        overrides.append("method=q4_k_m")
    if not any(o.startswith("threads=") for o in overrides):
        overrides.append("threads=1")
    cfg = compose(overrides)
    only = set(a.only.split(","))
    paths = models(cfg)
    if a.parent:
        paths["parent F16"] = a.parent
    if a.child:
        paths["child"] = a.child
    load0 = os.getloadavg()[0]
    print(f"{cfg.model.name}: parent F16 {paths['parent F16']}, child ({cfg.method.name}) "
          f"{paths['child']}; threads={cfg.threads}; {os.cpu_count()} cores, load {load0:.1f}")
    if "probes" in only:
        probes_section(cfg, paths, a)
    with tempfile.TemporaryDirectory(prefix="slim-bench-eval-") as tmp:
        if "fidelity" in only:
            fidelity_section(cfg, paths, Path(tmp), a.fidelity_rounds, not a.no_noise_floor)
        if "imatrix" in only:
            imatrix_section(cfg, paths, Path(tmp), a.imatrix_fp32)
    print(f"\nload {load0:.1f} -> {os.getloadavg()[0]:.1f}")


def sample_blocks(items: list, n: int, blocks: int = 8) -> list:
    """About ``n`` items as ``blocks`` runs of consecutive items spread over the suite: the
    probe step decodes the suite in file order, where neighbours share openings (system
    message, instructions) that batched decoding reuses; every k-th item would share none."""
    size = max(1, n // blocks)
    starts = [round(b * (len(items) - size) / max(1, blocks - 1)) for b in range(blocks)]
    return [items[j] for j in sorted({j for s in starts for j in range(s, s + size)})]


def probes_section(cfg, paths: dict, a) -> None:
    from slim.probes.suite import load_items
    items = load_items(list(cfg.probes.categories), cfg.probes.max_items_per_category)
    if a.items and a.items < len(items):
        items = sample_blocks(items, a.items)
    print(f"\nprobes: {len(items)} items ({cfg.probes.name} suite), max_tokens "
          f"{cfg.probes.max_tokens}, greedy, llama.cpp, batch size {a.batch_size}, {a.rounds} "
          f"alternating rounds")
    tot = {"seq_s": 0.0, "bat_s": 0.0, "seq_cpu": 0.0, "bat_cpu": 0.0, "n": 0, "identical": 0}
    print(f"flash attention {'on (as the probe step runs)' if a.flash_attn else 'off'}; "
          f"CPU seconds in brackets (this process, all threads: load moves them far less)")
    for name in ("parent F16", "child"):
        path = paths[name]
        m = measure(path, items, cfg, a.batch_size, a.rounds, a.flash_attn)
        for k in tot:
            tot[k] += m[k]
        print(f"\n{name}: {path}")
        print(f"  one at a time: {m['seq_s']:7.1f} s ({m['seq_cpu']:7.1f} s CPU)  "
              f"{m['n'] / m['seq_s']:6.3f} items/s")
        print(f"  batched ({a.batch_size:2}) : {m['bat_s']:7.1f} s ({m['bat_cpu']:7.1f} s CPU)  "
              f"{m['n'] / m['bat_s']:6.3f} items/s   ratio {m['seq_s'] / m['bat_s']:.2f}x wall, "
              f"{m['seq_cpu'] / m['bat_cpu']:.2f}x CPU  (target >= 4)")
        print(f"  identical outputs: {m['identical']}/{m['n']} = {100 * m['identical'] / m['n']:.1f}% "
              f"(text {m['identical_text']}); differing: {m['explained']} flips at near-ties (batched "
              f"choice within {m['bound']} nats of the best; one-row vs multi-row kernels of this "
              f"file differ by up to {m['sigma']}), {len(m['unexplained'])} unexplained; same verdict "
              f"{m['same_verdict']}/{m['n']}")
        for u in m["unexplained"][:5]:
            print(f"    unexplained: item {items[u['index']]['id']} at token {u['at']}: batched choice "
                  f"trails by {u['gap']} (one at a time) / {u['gap_one_pass']} (one pass) nats")
        print(f"  tokens: {m['prompt_tokens']} prompt, {m['gen_tokens']} generated (one at a time)")
    print(f"\nboth models: one at a time {tot['n'] / tot['seq_s']:.3f} items/s, batched "
          f"{tot['n'] / tot['bat_s']:.3f} items/s, ratio {tot['seq_s'] / tot['bat_s']:.2f}x wall, "
          f"{tot['seq_cpu'] / tot['bat_cpu']:.2f}x CPU; "
          f"identical {100 * tot['identical'] / tot['n']:.1f}%")


if __name__ == "__main__":
    main()
