"""Cold build vs fully cached rebuild of the same target, side by side in one run.

Cold uses a fresh, empty cache directory; warm reruns the same command against it.
Usage: python bench/rebuild.py [hydra overrides...]   (default: the main job)
       python bench/rebuild.py model=tiny_llama probes=quick calibration=small
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args, env) -> float:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "slim", *args], env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"build failed:\n{r.stderr[-3000:]}")
    return dt


def main() -> None:
    overrides = sys.argv[1:] or ["method=q4_k_m", "hardware=apple8gb"]
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, SLIM_CACHE_DIR=str(Path(d) / "cache"), SLIM_NO_PROGRESS="1",
                   SLIM_KEY_DIR=os.environ.get("SLIM_KEY_DIR", str(Path(d) / "keys")))
        args = overrides + [f"paths.builds={Path(d) / 'builds'}"]
        cold = run(args, env)
        warm = run(args, env)
        build = next((Path(d) / "builds").glob("*/report.json"))
        steps = json.loads(build.read_text())["steps"]
    print(f"target: {' '.join(overrides)}")
    print(f"cold build (empty cache): {cold:8.1f} s")
    print(f"warm rebuild (cached)   : {warm:8.1f} s  ({sum(s['cached'] for s in steps)}/{len(steps)} "
          f"steps cached)")
    print(f"warm/cold: {100 * warm / cold:.1f}%  (target < 10%)")


if __name__ == "__main__":
    main()
