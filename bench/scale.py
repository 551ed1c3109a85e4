"""How slim's memory, time and cache grow with model size (issue 16).

Builds seeded random Llama models of about 135M, 0.5B and 1B parameters through the GGUF main
job (``method=q4_k_m hardware=cpu16gb probes=quick calibration=small threads=1``), each in a
fresh cache, and prints per step the seconds and peak RSS in bytes per parameter, and the cache
growth in bytes per parameter. ``--hf`` also builds the ~1B model given as a user's 16-bit
safetensors folder (``model=hf model.path=...``; saved once with ``save_pretrained`` in bf16),
the case the issue's limits are about: every step's peak RSS ≤ 2.5 bytes/param, the cache
growth ≤ 3.0 bytes/param, and a BF16 GGUF parent.

Random weights (not a trained model) are enough here: memory and time depend on shapes, not
values. Each build runs as ``python -m slim`` in a subprocess, like a user's, with its own
``SLIM_CACHE_DIR`` so the cache growth is that build's alone; cache bytes are counted without
following links (a referenced user's file is not the cache's).

Usage::

    python bench/scale.py --sizes 135m,0.5b,1b --hf --work /tmp/scale --json /tmp/scale/out.json
    python bench/scale.py --table /tmp/scale/out.json     # print the markdown table again
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: seeded random Llama shapes (vocab 49152, SmolLM2's tokenizer; tied embeddings)
SHAPES = {
    "135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                 num_attention_heads=9, num_key_value_heads=3),
    "0.5b": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                 num_attention_heads=16, num_key_value_heads=4),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
               num_attention_heads=32, num_key_value_heads=8),
    "3b": dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
               num_attention_heads=24, num_key_value_heads=8),
}
COMMON = ["method=q4_k_m", "hardware=cpu16gb", "probes=quick", "calibration=small", "threads=1"]


def n_params(shape: dict, vocab: int = 49152) -> int:
    from slim.hardware.estimate import param_shapes
    arch = dict(shape, model_type="llama", vocab_size=vocab, tie_word_embeddings=True)
    return sum(r * c for _n, r, c in param_shapes(arch))


def save_random_folder(shape: dict, out: Path, dtype: str = "bfloat16", seed: int = 0) -> Path:
    """A user's HF folder: a seeded random Llama saved with ``save_pretrained`` in ``dtype``
    (created in that dtype: never an fp32 copy), with SmolLM2's tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from slim.models.embedded import packaged_file
    from slim.models.gguf_tokenizer import tokenizer_from_gguf
    from slim.plan import TINY_TOKENIZER
    if (out / "config.json").is_file():
        return out
    tok = tokenizer_from_gguf(packaged_file(*TINY_TOKENIZER))
    config = AutoConfig.for_model("llama", vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                  tie_word_embeddings=True, max_position_embeddings=2048, **shape)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    with torch.no_grad():
        for _name, w in model.named_parameters():
            if w.dim() == 2:
                w.normal_(0.0, 0.02)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    tmp.rename(out)
    return out


def f16_twin(bf16_folder: Path, out: Path) -> Path:
    """The same weights cast bf16 -> f16 (exact for these N(0, 0.02) values but the few below
    f16's normal range): the control for "a BF16 parent keeps Q4_K_M's KLD within noise"."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file
    if (out / "config.json").is_file():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in bf16_folder.iterdir():
        if f.name.endswith(".safetensors"):
            t = {k: v.to(torch.float16) for k, v in load_file(f).items()}
            save_file(t, tmp / f.name, metadata={"format": "pt"})
        elif f.is_file():
            shutil.copyfile(f, tmp / f.name)
    cfg = json.loads((tmp / "config.json").read_text())
    cfg["dtype"] = cfg["torch_dtype"] = "float16"
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
    tmp.rename(out)
    return out


def tree_bytes(root: Path) -> int:
    """Bytes under ``root`` without following links (lstat)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except FileNotFoundError:
                continue
            if not os.path.islink(os.path.join(dirpath, f)):
                total += st.st_blocks * 512 if st.st_blocks else st.st_size
    return total


def run_build(name: str, overrides: list[str], work: Path) -> dict:
    cache = work / f"cache-{name}"
    builds = work / "builds"
    env = dict(os.environ, SLIM_CACHE_DIR=str(cache), SLIM_KEY_DIR=str(work / "keys"),
               HF_HUB_OFFLINE="1", SLIM_NO_PROGRESS="1")
    before = tree_bytes(cache) if cache.exists() else 0
    args = [sys.executable, "-m", "slim", *overrides, *COMMON, f"paths.builds={builds}",
            f"build_name=scale-{name}"]
    t0 = time.time()
    log = work / f"{name}.log"
    with open(log, "w") as f:
        rc = subprocess.run(args, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    seconds = time.time() - t0
    out = {"name": name, "overrides": overrides, "rc": rc, "seconds": round(seconds, 1),
           "cache_bytes": tree_bytes(cache) - before, "log": str(log)}
    report = builds / f"scale-{name}" / "report.json"
    if rc == 0 and report.is_file():
        r = json.loads(report.read_text())
        out["steps"] = [{k: s.get(k) for k in ("id", "kind", "seconds", "peak_rss_bytes",
                                               "peak_gpu_bytes", "device", "cached")}
                        for s in r["steps"]]
        out["parent"] = {k: r["parent"].get(k) for k in ("format", "gguf_type", "dtype",
                                                         "import") if k in r["parent"]}
        fid = (r.get("metrics") or {}).get("fidelity") or {}
        out["kld_mean"] = fid.get("kld_mean")
        out["environment"] = {k: r["environment"].get(k) for k in ("accelerators", "threads")}
    else:
        out["error"] = log.read_text()[-2000:]
    return out


def table(results: list[dict]) -> str:
    lines = []
    for res in results:
        p = res["params"]
        gb = res["cache_bytes"] / p
        lines.append(f"\n### {res['name']}: {p / 1e9:.3f}B parameters ({res['source']})\n")
        if "steps" not in res:
            lines.append(f"build failed (rc {res['rc']}): see {res['log']}\n")
            continue
        lines.append(f"build {res['seconds']:.0f} s; cache growth {res['cache_bytes'] / 2**30:.2f} "
                     f"GiB = **{gb:.2f} bytes/param**; KLD(q4_k_m) {res.get('kld_mean')}\n")
        lines.append("| step | seconds | peak RSS | bytes/param |")
        lines.append("|---|---:|---:|---:|")
        for s in res["steps"]:
            rss = s.get("peak_rss_bytes")
            if s.get("cached") or rss is None:
                continue
            lines.append(f"| {s['id']} | {s['seconds']:.1f} | {rss / 2**30:.2f} GiB | "
                         f"{rss / p:.2f} |")
    return "\n".join(lines)


P_8B = 8_030_261_248   # Llama-3-8B (conf/model/llama3_8b.yaml, untied)


def extrapolate(results: list[dict], p_target: int = P_8B) -> str:
    """Per step, peak RSS at ``p_target`` parameters: a line through the two largest builds of
    the same source (fixed cost + bytes/param); a source built at one size only is paired with
    the smallest build (the fixed cost of a step is the same whatever the source)."""
    ok = [r for r in results if "steps" in r]
    by_source: dict[str, list[dict]] = {}
    for r in ok:
        by_source.setdefault(r["source"], []).append(r)
    lines = [f"\n### Extrapolated to {p_target / 1e9:.2f}B parameters\n",
             "| source | step | peak RSS | how |", "|---|---|---:|---|"]
    peak = {}
    floor = min((s["peak_rss_bytes"] for r in ok for s in r["steps"]
                 if s.get("kind") == "calibration_set" and s.get("peak_rss_bytes")),
                default=0)   # a step process with transformers imported and no weights
    for source, rs in by_source.items():
        big = max(rs, key=lambda r: r["params"])
        for st in (s for s in big["steps"] if s.get("peak_rss_bytes")):
            # a smaller build running the same step kind: of this source, else of any source
            # (the same kind costs the same fixed memory whatever the source)
            smaller = [r for r in sorted(rs, key=lambda r: r["params"]) if r is not big] or \
                [r for r in sorted(ok, key=lambda r: r["params"]) if r["params"] < big["params"]]
            pt = None
            for r in reversed(smaller):
                m = next((s for s in r["steps"] if s["id"] == st["id"]
                          and s.get("kind") == st.get("kind") and s.get("peak_rss_bytes")), None)
                if m is not None and r["params"] < big["params"]:
                    pt = (r["params"], m["peak_rss_bytes"])
                    break
            if pt is not None:
                b = (st["peak_rss_bytes"] - pt[1]) / (big["params"] - pt[0])
                a = st["peak_rss_bytes"] - b * big["params"]
                how = f"{a / 2**30:.2f} GiB + {b:.2f} B/param (line through two sizes)"
            else:   # one size only: what is above the process floor grows with the weights
                a = min(floor, st["peak_rss_bytes"])
                b = (st["peak_rss_bytes"] - a) / big["params"]
                how = f"{a / 2**30:.2f} GiB floor + {b:.2f} B/param (one size)"
            b = max(b, 0.0)
            est = a + b * p_target
            peak[source] = max(peak.get(source, (0, "")), (est, st["id"]))
            lines.append(f"| {source} | {st['id']} | {est / 2**30:.1f} GiB | {how} |")
        cache = max(by_source[source], key=lambda r: r["params"])
        lines.append(f"| {source} | **cache growth** | "
                     f"{cache['cache_bytes'] / cache['params'] * p_target / 2**30:.1f} GiB | "
                     f"{cache['cache_bytes'] / cache['params']:.2f} B/param |")
    for source, (est, sid) in peak.items():
        lines.append(f"\n{source}: peak {est / 2**30:.1f} GiB ({sid})")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="135m,0.5b,1b", help=f"of {', '.join(SHAPES)}")
    ap.add_argument("--hf", action="store_true", help="also the ~1B model as a bf16 HF folder")
    ap.add_argument("--hf-only", action="store_true", help="only the HF folder build(s)")
    ap.add_argument("--hf-f16", action="store_true",
                    help="also the same ~1B weights cast to an f16 folder (F16 parent: KLD control)")
    ap.add_argument("--work", default="/tmp/slim-scale")
    ap.add_argument("--json", default=None, help="append results here (one JSON per line)")
    ap.add_argument("--table", default=None,
                    help="print the tables (and the 8B extrapolation) of --json file(s), a,b")
    a = ap.parse_args()
    if a.table:
        res = [json.loads(x) for f in a.table.split(",")
               for x in Path(f).read_text().splitlines() if x.strip()]
        print(table(res))
        print(extrapolate(res))
        return 0
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    jobs = []
    if a.hf or a.hf_only:
        shape = SHAPES["1b"]
        folder = save_random_folder(shape, work / "hf-1b-bf16")
        jobs.append(("hf-1b-bf16", shape, "user's bf16 safetensors folder (model=hf)",
                     ["model=hf", f"model.path={folder}"]))
    if a.hf_f16:
        folder = f16_twin(save_random_folder(SHAPES["1b"], work / "hf-1b-bf16"),
                          work / "hf-1b-f16")
        jobs.append(("hf-1b-f16", SHAPES["1b"], "the same weights as an f16 folder (model=hf)",
                     ["model=hf", f"model.path={folder}"]))
    if not a.hf_only:
        for size in [s for s in a.sizes.split(",") if s]:
            shape = SHAPES[size]
            jobs.append((f"tiny-{size}", shape, "seeded random init (model=tiny_llama)",
                         ["model=tiny_llama"] + [f"model.arch.{k}={v}" for k, v in shape.items()]))
    results = []
    for name, shape, source, overrides in jobs:
        res = run_build(name, overrides, work)
        res.update(params=n_params(shape), source=source, shape=shape)
        results.append(res)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(res) + "\n")
        print(table([res]), flush=True)
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
