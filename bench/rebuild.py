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
        load0 = os.getloadavg()[0]
        cold = run(args, env)
        build = next((Path(d) / "builds").glob("*/report.json"))
        cold_steps = step_seconds(build.parent / "events.jsonl")
        warm = run(args, env)
        steps = json.loads(build.read_text())["steps"]
        load1 = os.getloadavg()[0]
    print(f"target: {' '.join(overrides)}; {os.cpu_count()} cores, load {load0:.1f} -> {load1:.1f}")
    print("cold build, step time (events.jsonl 'finished'), longest first:")
    for name, sec in sorted(cold_steps.items(), key=lambda kv: -kv[1]):
        print(f"  {name:32} {sec:8.1f} s")
    step_total = sum(cold_steps.values())
    print(f"  {'total step time':32} {step_total:8.1f} s  (target <= 360 s)")
    print(f"cold build (empty cache): {cold:8.1f} s wall")
    print(f"warm rebuild (cached)   : {warm:8.1f} s wall ({sum(s['cached'] for s in steps)}/{len(steps)} "
          f"steps cached)")
    print(f"warm/cold: {100 * warm / cold:.2f}%  (target < 1%)")


def step_seconds(events: Path) -> dict[str, float]:
    """Seconds of every step that ran, from a build's events.jsonl."""
    out = {}
    for line in events.read_text().splitlines():
        e = json.loads(line)
        if e.get("event") == "finished" and "seconds" in e:
            out[e["step"]] = out.get(e["step"], 0.0) + float(e["seconds"])
    return out


if __name__ == "__main__":
    main()
