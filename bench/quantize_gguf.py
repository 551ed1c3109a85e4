"""GGUF quantize: our cached step vs a bare llama_model_quantize call; imatrix vs none.

One run, side by side, on the same F16 GGUF:
  1. time of our quantize_gguf step through the executor (child process, cache publish,
     digests, type histogram) vs a bare ``llama_cpp.llama_model_quantize`` call in a fresh
     Python process (what a user's script does). Target ratio <= 1.1.
  2. mean KLD of q4_k_m with our importance matrix vs without (target ratio < 1).
Usage: python bench/quantize_gguf.py [hydra overrides]   (default model: the embedded SmolLM2)
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE = """
import sys, time, llama_cpp as lc
p = lc.llama_model_quantize_default_params()
p.nthread = int(sys.argv[3]); p.ftype = 15
t = time.perf_counter()
rc = lc.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), p)
assert rc == 0
"""


def compose(overrides):
    from hydra import compose as hc
    from hydra import initialize_config_dir

    import slim.config  # noqa: F401
    from slim.paths import CONF
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hc(config_name="config", overrides=overrides)


def main() -> None:
    from slim.build import open_store, run_build
    from slim.executor import EventLog, Executor
    from slim.plan import Planner

    extra = sys.argv[1:]
    with tempfile.TemporaryDirectory() as d:
        builds = Path(d) / "builds"
        # 2. fidelity with and without imatrix (also materialises every input of step 1)
        reports = {}
        for im in (True, False):
            cfg = compose(extra + ["method=q4_k_m", f"method.stages.0.params.imatrix={str(im).lower()}",
                                   f"build_name=bench-imatrix-{im}", f"paths.builds={builds}",
                                   "probes.categories=[]"])
            out = run_build(cfg, quiet=True)
            reports[im] = json.loads((out / "report.json").read_text())
        # 1. our step vs bare call, both from a cold process, same threads, same F16 input
        cfg = compose(extra + ["method=q4_k_m", "method.stages.0.params.imatrix=false",
                               "probes.categories=[]"])
        plan = Planner(cfg).build()
        store = open_store(cfg)
        ex = Executor(store, EventLog(None), cfg.threads)
        resolved = ex.resolve(plan.steps)
        by_id = {r.step.id: r for r in resolved}
        q = by_id["quantize_gguf:0"]
        f16 = store.get(by_id[q.step.deps["f16"]].key).data / "model.gguf"
        for r in resolved:  # entries of every dependency exist from the builds above
            r.entry = store.get(r.key)
        ours, bare = [], []
        for _ in range(3):
            store.evict(q.key)
            t = time.perf_counter()
            ex._run_one(q)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", BARE, str(f16), str(Path(d) / "bare.gguf"),
                            str(ex.threads)], check=True, capture_output=True)
            bare.append(time.perf_counter() - t)
    o, b = min(ours), min(bare)
    print(f"F16 input: {f16.stat().st_size / 1e6:.1f} MB, Q4_K_M, {ex.threads} threads, best of 3")
    print(f"our quantize_gguf step (executor, child process, publish): {o:6.2f} s")
    print(f"bare llama_model_quantize (fresh python process)         : {b:6.2f} s")
    print(f"ratio ours/bare: {o / b:.3f}  (target <= 1.1)")
    k1 = reports[True]["metrics"]["fidelity"]
    k0 = reports[False]["metrics"]["fidelity"]
    print(f"q4_k_m KLD with imatrix   : {k1['kld_mean']:.5f} ± {k1['kld_mean_stderr']:.5f} "
          f"(top-1 {100 * k1['top1_agreement']:.2f}%, {k1['tokens']} tokens)")
    print(f"q4_k_m KLD without imatrix: {k0['kld_mean']:.5f} ± {k0['kld_mean_stderr']:.5f} "
          f"(top-1 {100 * k0['top1_agreement']:.2f}%)")
    print(f"ratio imatrix/none: {k1['kld_mean'] / k0['kld_mean']:.3f}  (target < 1)")


if __name__ == "__main__":
    main()
