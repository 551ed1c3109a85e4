"""Build time per method on one model, side by side in one run.

What is timed, and why: each method builds its artifact (no evaluation, no report) into
a fresh, empty cache directory in which only the shared inputs are present: the
imported 16-bit parent and the tokenized calibration set, linked from ``$SLIM_CACHE_DIR``
(computed there first if missing). So every method pays for all of its own steps cold
(compression; for compositions also GGUF conversion, importance matrix and quantize,
each a child process with its imports), and none pays for the inputs every method
shares and a second build never recomputes. Evaluation is left out: it measures the
artifact, not the method, and depends on the probe suite chosen.

Printed per method: wall seconds, CPU seconds of the step processes (on a shared
machine wall time grows with other load, CPU time much less), artifact size, and the
steps that ran. The calibration set is the config's (default: 128 × 512 tokens);
methods with ``max_samples`` in their YAML (awq_w4, autoround_w4) use fewer windows.

Usage: python bench/methods.py [--methods gptq_w4,wanda50] [hydra overrides...]
       (default: the eight methods of the llm-compressor / auto-round family, on the
       default model, tier h100_80gb, which runs every format they produce)
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

METHODS = ("gptq_w4", "awq_w4", "fp8_dynamic", "w8a8_smoothquant", "autoround_w4",
           "wanda50", "sparsegpt50", "sparsegpt_2of4")


def compose(overrides):
    from hydra import compose as hc
    from hydra import initialize_config_dir

    import slim.config  # noqa: F401
    from slim.paths import CONF
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hc(config_name="config", overrides=overrides)


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def stderr_to(path: Path):
    """Send fd 2 (inherited by the step processes) to ``path`` within the block."""
    from slim.steps.stderr import quiet_stderr
    path.parent.mkdir(parents=True, exist_ok=True)
    return quiet_stderr(path)


def bench_one(method: str, overrides: list[str], tmp: Path) -> dict:
    from slim.build import open_store
    from slim.cache.store import ObjectStore
    from slim.config.validate import validate
    from slim.executor import EventLog, Executor
    from slim.plan import Planner, input_path

    cfg = compose(overrides + [f"method={method}"])
    validate(cfg)
    plan = Planner(cfg).build()
    from slim.plan import ancestors
    keep = ancestors(plan.steps, [plan.artifact.step])
    shared_ids = ancestors(plan.steps, [plan.parent.step, plan.calibration]) & keep
    shared = Executor(open_store(cfg), EventLog(None), cfg.threads).run(
        {k: plan.steps[k] for k in shared_ids})
    fresh = ObjectStore(tmp / f"cache-{method}")
    for r in shared.values():  # the shared inputs, linked in: present, never recomputed
        link = fresh.entry_path(r.key)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(r.entry.path, target_is_directory=True)
    logs = tmp / f"logs-{method}"
    cpu0, t0 = children_cpu_s(), time.perf_counter()
    with stderr_to(logs / "stderr.log"):  # the engines' progress bars and warnings
        done = Executor(fresh, EventLog(None), cfg.threads, step_log_dir=logs).run(
            {k: plan.steps[k] for k in keep})
    wall, cpu = time.perf_counter() - t0, children_cpu_s() - cpu0
    ran = [r for r in done.values() if r.ran]
    if any(r.step.id in shared_ids for r in ran):
        raise RuntimeError(f"{method}: a shared input was recomputed in the fresh cache")
    art = input_path(done, plan.artifact)
    size = sum(p.stat().st_size for p in art.rglob("*") if p.is_file()) if art.is_dir() \
        else art.stat().st_size
    return {"method": method, "wall_s": wall, "cpu_s": cpu, "bytes": size,
            "steps": [f"{r.step.id} {r.seconds:.0f}s" for r in ran]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(METHODS),
                    help="comma-separated method names (conf/method/*.yaml)")
    args, overrides = ap.parse_known_args()
    if not any(o.startswith("hardware=") for o in overrides):
        overrides.append("hardware=h100_80gb")
    os.environ.setdefault("SLIM_NO_PROGRESS", "1")
    methods = [m for m in args.methods.split(",") if m]
    rows, failed = [], []
    work = Path(tempfile.mkdtemp(prefix="slim-bench-methods-"))
    for m in methods:
        print(f"building {m} ...", flush=True)
        try:
            rows.append(bench_one(m, overrides, work))
        except Exception as e:  # noqa: BLE001 - report every method, then fail
            failed.append(m)
            print(f"  {m} FAILED: {type(e).__name__}: {e} (step logs: {work / f'logs-{m}'})",
                  flush=True)
            continue
        finally:
            shutil.rmtree(work / f"cache-{m}", ignore_errors=True)
        r = rows[-1]
        print(f"  {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU", flush=True)
    if not failed:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\ntarget: {' '.join(overrides)}  (host: {os.cpu_count()} cores)")
    print(f"{'method':<18} {'wall s':>8} {'CPU s':>8} {'MB':>8}  steps run (seconds)")
    for r in rows:
        print(f"{r['method']:<18} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {r['bytes'] / 1e6:8.1f}  "
              f"{', '.join(r['steps'])}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
