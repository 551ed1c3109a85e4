"""A 4-member sweep through one shared cache vs the same 4 builds each with an empty cache.

Shared: ``python -m slim -m method=A,B,C,D ...`` (one multirun, members one after the other,
all through one fresh cache: the parent import, conversion, calibration, importance matrix,
parent reference logits and parent probes are computed once). Separate: ``python -m slim
method=X ...`` four times, each with its own fresh, empty cache. Same machine, same run,
side by side.

Usage: python bench/sweep.py [--methods q8_0,q6_k,q5_k_m,q4_k_m] [--jobs N] [hydra overrides...]
       python bench/sweep.py                                    # the default model, apple8gb
       python bench/sweep.py model=tiny_llama probes=quick calibration=small
``--jobs 2`` also times the shared sweep with the joblib launcher (2 members at once).
Target: shared / separate <= 0.6 on the default model.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALLBACK = "++hydra.callbacks.sweep_summary._target_=slim.sweep.SweepSummary"


def run(args: list[str], env: dict) -> float:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "slim", *args], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"slim {' '.join(args)} failed:\n{r.stderr[-3000:]}")
    return dt


def env_for(base: Path, cache: str) -> dict:
    return dict(os.environ, SLIM_CACHE_DIR=str(base / cache), SLIM_KEY_DIR=str(base / "keys"),
                SLIM_NO_PROGRESS="1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="q8_0,q6_k,q5_k_m,q4_k_m")
    ap.add_argument("--jobs", type=int, default=0,
                    help="also time the shared sweep with hydra/launcher=joblib n_jobs=N")
    ap.add_argument("overrides", nargs="*", help="hydra overrides (default: hardware=apple8gb)")
    a = ap.parse_args()
    methods = a.methods.split(",")
    overrides = a.overrides or ["hardware=apple8gb"]
    with tempfile.TemporaryDirectory(prefix="slim-bench-sweep-") as d:
        base = Path(d)
        shared_args = ["-m", f"method={','.join(methods)}", *overrides,
                       f"paths.builds={base / 'shared'}", CALLBACK]
        shared = run(shared_args, env_for(base, "cache-shared"))
        sweep_dir = next((base / "shared" / "_sweeps").iterdir())
        summary = json.loads((sweep_dir / "summary.json").read_text())
        separate = {}
        for m in methods:
            separate[m] = run([f"method={m}", *overrides, f"paths.builds={base / 'separate'}"],
                              env_for(base, f"cache-{m}"))
        parallel = None
        if a.jobs:
            parallel = run(["-m", f"method={','.join(methods)}", *overrides,
                            f"paths.builds={base / 'parallel'}", "hydra/launcher=joblib",
                            f"hydra.launcher.n_jobs={a.jobs}", CALLBACK],
                           env_for(base, "cache-parallel"))
    total = sum(separate.values())
    print(f"sweep: method={','.join(methods)} {' '.join(overrides)}  ({os.cpu_count()} cores)")
    print(f"{'member':34} {'separate, empty cache':>22} {'in shared sweep':>16} {'cached steps':>13}")
    for m in methods:
        row = next((r for r in summary["members"] if (r.get("target") or {}).get("method") == m), {})
        print(f"{row.get('member', m):34} {separate[m]:20.1f} s {row.get('seconds') or 0:14.1f} s "
              f"{row.get('cached_steps') or '-':>13}")
    print(f"4 builds, each with an empty cache : {total:8.1f} s")
    print(f"one sweep through a shared cache   : {shared:8.1f} s")
    if parallel is not None:
        print(f"shared sweep, joblib n_jobs={a.jobs}     : {parallel:8.1f} s  "
              f"(ratio {parallel / total:.2f})")
    print(f"shared / separate: {shared / total:.2f}  (target <= 0.60 on the default model)")


if __name__ == "__main__":
    main()
