"""Peak RSS of the torch method steps (llm-compressor, auto-round, distillation, lowrank) on a
seeded random ~0.42B Llama given as a user's bf16 HF folder (issue 16).

Each method runs as a real build (``python -m slim model=hf model.path=... method=M
probes=quick calibration=small threads=1``) in its own fresh cache; the build's
``events.jsonl`` is watched and, as soon as the method's step has ``finished`` (its peak RSS,
the step process's ``ru_maxrss``, is in the event), the build is stopped: what follows the step
(conversion, probes, fidelity) is measured by ``bench/scale.py``, not here.

``--root`` runs another checkout's code (``git worktree add /tmp/wt <commit>``) with the same
folder, so the "before" and "after" columns come from the same script, model and host::

    python bench/torch_steps_memory.py --methods gptq_w4,wanda50 --label after --json out.jsonl
    python bench/torch_steps_memory.py --methods gptq_w4 --root /tmp/old-wt --label before \
        --json out.jsonl
    python bench/torch_steps_memory.py --table out.jsonl

The folder is made by ``bench/scale.py``'s ``save_random_folder`` (created in bf16, never an
fp32 copy) and reused when present.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

#: step kinds whose memory this bench is about
TORCH_KINDS = ("llmc_oneshot", "autoround", "distill", "student", "lowrank")


def run_method(method: str, folder: Path, work: Path, root: Path, label: str,
               extra: list[str], timeout: float) -> dict:
    name = f"{label}-{method}"
    cache, builds = work / f"cache-{name}", work / "builds"
    build_dir = builds / f"tsm-{name}"
    if build_dir.exists():
        import shutil
        shutil.rmtree(build_dir)
    env = dict(os.environ, SLIM_CACHE_DIR=str(cache), SLIM_KEY_DIR=str(work / "keys"),
               HF_HUB_OFFLINE="1", SLIM_NO_PROGRESS="1")
    args = [sys.executable, "-m", "slim", "model=hf", f"model.path={folder}", f"method={method}",
            "hardware=cpu16gb", "probes=quick", "calibration=small", "threads=1",
            f"paths.builds={builds}", f"build_name=tsm-{name}", *extra]
    log = work / f"{name}.log"
    t0 = time.time()
    out: dict = {"method": method, "label": label, "root": str(root), "extra": extra}
    with open(log, "w") as f:
        proc = subprocess.Popen(args, cwd=root, env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
        kinds: dict = {}
        found = None
        while proc.poll() is None and time.time() - t0 < timeout:
            time.sleep(2)
            # the running build's events are under .staging/ until it publishes
            evs = [build_dir / "events.jsonl",
                   *sorted((builds / ".staging").glob(f"tsm-{name}-*/events.jsonl"))]
            evs = [e for e in evs if e.is_file()]
            if not evs:
                continue
            ev = evs[-1]
            for line in ev.read_text().splitlines():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("event") == "planned":
                    kinds[e["step"]] = e.get("kind")
                elif (e.get("event") == "finished" and kinds.get(e.get("step")) in TORCH_KINDS):
                    found = e
                elif e.get("event") == "failed" and kinds.get(e.get("step")) in TORCH_KINDS:
                    out["error"] = e
            if found or "error" in out:
                break
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    out["build_seconds"] = round(time.time() - t0, 1)
    if found:
        out.update(step=found["step"], kind=kinds[found["step"]], seconds=found.get("seconds"),
                   peak_rss_bytes=found.get("peak_rss_bytes"), devices=found.get("devices"))
    elif "error" not in out:
        out["error"] = log.read_text()[-2000:]
    return out


RUNTIME_SCRIPT = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from slim.runtimes.hf import HFRuntime
t0 = time.time()
rt = HFRuntime(sys.argv[2], n_ctx=512, threads=1)
ids = rt.tokenize("The quick brown fox jumps over the lazy dog. " * 60, add_bos=True)[:512]
lp = rt.logprobs(ids)
t1 = time.time()
gen = rt.generate(ids[:32], max_tokens=16, ignore_eos=True)
t2 = time.time()
print(json.dumps({"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "load_and_score_s": round(t1 - t0, 1), "generate_16_s": round(t2 - t1, 1),
                  "weights": sorted({str(p.dtype) for p in rt.model.parameters()}),
                  "logprob_sum": float(lp[range(len(ids) - 1), ids[1:]].sum())}))
"""


def run_runtime(folder: Path, root: Path, label: str) -> dict:
    """Peak RSS of the transformers runtime (a fresh process): load, score one 512-token
    window, generate 16 tokens."""
    out = subprocess.run([sys.executable, "-c", RUNTIME_SCRIPT, str(root), str(folder)],
                         cwd=root, capture_output=True, text=True,
                         env=dict(os.environ, HF_HUB_OFFLINE="1", SLIM_TORCH_DEVICE="cpu"))
    r = {"method": "transformers runtime", "label": label, "root": str(root),
         "kind": "HFRuntime", "step": "runtime"}
    try:
        r.update(json.loads(out.stdout.strip().splitlines()[-1]))
        r["seconds"] = r["load_and_score_s"] + r["generate_16_s"]
    except (ValueError, IndexError):
        r["error"] = (out.stdout + out.stderr)[-2000:]
    return r


def table(rows: list[dict], n: int) -> str:
    lines = [f"| method | step | run | seconds | peak RSS | bytes / param |",
             "|---|---|---|---:|---:|---:|"]
    for r in rows:
        if r.get("peak_rss_bytes"):
            b = r["peak_rss_bytes"]
            lines.append(f"| {r['method']} | {r.get('kind')} | {r['label']} | {r['seconds']:.0f} | "
                         f"{b / 2**30:.2f} GiB | **{b / n:.2f}** |")
        else:
            lines.append(f"| {r['method']} | | {r['label']} | | failed | |")
    return "\n".join(lines)


def main() -> int:
    from scale import SHAPES, n_params, save_random_folder
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="gptq_w4,wanda50,awq_w4,autoround_w4",
                    help="method names; 'runtime': the transformers runtime alone")
    ap.add_argument("--size", default="0.5b", help=f"one of {', '.join(SHAPES)}")
    ap.add_argument("--work", default="/tmp/slim-torch-mem")
    ap.add_argument("--root", default=str(ROOT), help="checkout whose code runs the builds")
    ap.add_argument("--label", default="after")
    ap.add_argument("--json", default=None, help="append results here (one JSON per line)")
    ap.add_argument("--table", default=None, help="print the table of a results file and exit")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("extra", nargs="*", help="more overrides for every build")
    a = ap.parse_args()
    n = n_params(SHAPES[a.size])
    if a.table:
        rows = [json.loads(ln) for ln in Path(a.table).read_text().splitlines() if ln.strip()]
        print(f"{n / 1e9:.2f}B parameters\n")
        print(table(rows, n))
        return 0
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    folder = save_random_folder(SHAPES[a.size], work / f"hf-{a.size}-bf16")
    rows = []
    for m in [m for m in a.methods.split(",") if m]:
        if m == "runtime":
            r = run_runtime(folder, Path(a.root), a.label)
        else:
            r = run_method(m, folder, work, Path(a.root), a.label, a.extra, a.timeout)
        r["params"] = n
        rows.append(r)
        print(json.dumps(r), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(r) + "\n")
    print(table(rows, n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
