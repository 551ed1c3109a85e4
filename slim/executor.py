"""Plan execution: resolve every step's key, say why it runs, run it through the cache.

Keys are resolved in topological order: a dependency contributes its own key as
the input digest (so a changed calibration file changes every downstream key),
an external file contributes its content digest (memoised by stat tuple).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from slim.cache.keys import diff_material, lib_versions, step_key
from slim.cache.store import Entry, ObjectStore
from slim.diskspace import describe, disk_full_info
from slim.errors import DiskFull, SlimError, StepFailed
from slim.fileio import canonical_json
from slim.steps.base import Step, step_module


class EventLog:
    """Append-only ``events.jsonl``: one JSON object per step event."""

    def __init__(self, path: Path | None, echo=None):
        self.path = path
        self.echo = echo
        self.events: list[dict] = []

    def emit(self, event: str, **info) -> None:
        rec = {"t": round(time.time(), 3), "event": event, **info}
        self.events.append(rec)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(canonical_json(rec, default=str) + "\n")
        if self.echo:
            self.echo(rec)


@dataclass
class Resolved:
    step: Step
    key: str
    material: dict
    cached: bool
    why: list[str]
    entry: Entry | None = None
    seconds: float | None = None
    ran: bool = False
    #: the step process's peak RSS / CUDA memory (None when it came from the cache)
    peak_rss_bytes: int | None = None
    peak_gpu_bytes: int | None = None


def toposort(steps: dict[str, Step]) -> list[Step]:
    order, seen, stack = [], set(), set()

    def visit(sid: str) -> None:
        if sid in seen:
            return
        if sid in stack:
            raise SlimError(f"cycle in plan at step {sid}")
        if sid not in steps:
            raise SlimError(f"plan refers to unknown step {sid}")
        stack.add(sid)
        for dep in steps[sid].deps.values():
            visit(dep)
        stack.discard(sid)
        seen.add(sid)
        order.append(steps[sid])

    for sid in steps:
        visit(sid)
    return order


def full_params(step: Step) -> dict:
    """Params with the step's defaults filled in, so a changed default changes the key."""
    P = getattr(step_module(step.kind), "Params", None)
    if P is None:
        return dict(step.params)
    return dataclasses.asdict(P(**step.params))


class Executor:
    def __init__(self, store: ObjectStore, log: EventLog, threads: int | None = None,
                 verify: bool = False, previous: dict[str, dict] | None = None,
                 step_log_dir: Path | None = None):
        self.store = store
        self.log = log
        self.threads = threads or os.cpu_count() or 1
        self.verify = verify
        self.previous = previous or {}
        self.step_log_dir = step_log_dir
        self.resolved: dict[str, Resolved] = {}

    # -- planning -----------------------------------------------------------
    def resolve(self, steps: dict[str, Step]) -> list[Resolved]:
        out = []
        for step in toposort(steps):
            mod = step_module(step.kind)
            inputs = {name: f"step:{self.resolved[dep].key}" for name, dep in step.deps.items()}
            for name, path in step.files.items():
                if not Path(path).exists():
                    raise SlimError(f"input file for step {step.id} not found: {path}")
                inputs[name] = f"file:{self.store.memo.tree_digest(path)}"
            key, material = step_key(step.kind, mod.VERSION, full_params(step), inputs,
                                     lib_versions(getattr(mod, "LIBS", ())))
            entry = self.store.get(key)
            if entry is not None:
                why = ["cached"]
            else:
                prev = self.previous.get(step.id)
                why = diff_material(prev, material) if prev else ["no cache entry for this key"]
                why = why or ["cache entry missing (evicted or gc'd)"]
            r = Resolved(step, key, material, entry is not None, why, entry)
            self.resolved[step.id] = r
            out.append(r)
        return out

    # -- running ------------------------------------------------------------
    def run(self, steps: dict[str, Step]) -> dict[str, Resolved]:
        order = self.resolve(steps)
        for r in order:
            self.log.emit("planned", step=r.step.id, kind=r.step.kind, key=r.key,
                          cached=r.cached, why=r.why)
        for r in order:
            self._run_one(r)
        return self.resolved

    def _run_one(self, r: Resolved) -> None:
        step = r.step
        inputs = {name: str(self.resolved[dep].entry.data) for name, dep in step.deps.items()}
        inputs.update({name: str(Path(p).resolve()) for name, p in step.files.items()})
        t0 = time.time()
        started = []

        def compute(out: Path) -> None:
            started.append(True)
            self.log.emit("started", step=step.id, kind=step.kind, key=r.key, why=r.why)
            self._subprocess(step, r, inputs, out)

        try:
            try:
                entry, cached = self.store.get_or_compute(
                    r.key, r.material, compute, verify=self.verify,
                    on_event=lambda ev, info: self.log.emit(ev, step=step.id, **info))
            except OSError as e:  # ENOSPC in the build's own writes (spec, manifest, log)
                info = disk_full_info(e, self.store.root / "tmp", guess=False)
                if not info:
                    raise
                raise DiskFull(step.id, describe(info), info) from None
        except StepFailed as e:
            self._emit_failed(step=step.id, key=r.key, reason=e.reason, message=str(e))
            raise
        except KeyboardInterrupt:
            self._emit_failed(step=step.id, key=r.key, reason="interrupted")
            raise
        r.entry, r.ran = entry, bool(started)
        r.cached = not started
        r.seconds = round(time.time() - t0, 3)
        if started:
            mem = {k: v for k, v in (("peak_rss_bytes", r.peak_rss_bytes),
                                      ("peak_gpu_bytes", r.peak_gpu_bytes)) if v is not None}
            self.log.emit("finished", step=step.id, key=r.key, seconds=r.seconds, **mem)
        else:
            self.log.emit("cache_hit", step=step.id, key=r.key)

    def _emit_failed(self, **info) -> None:
        """Record a failure; on a full disk events.jsonl may not take it, and that must not
        hide the failure itself."""
        try:
            self.log.emit("failed", **info)
        except OSError:
            if self.log.echo:
                self.log.echo({"event": "failed", **info})

    def _subprocess(self, step: Step, r: Resolved, inputs: dict, out: Path) -> None:
        work = self.store.root / "tmp" / f"spec-{uuid.uuid4().hex}"
        work.mkdir(parents=True)
        try:
            spec = {"id": step.id, "kind": step.kind, "params": step.params, "inputs": inputs,
                    "out": str(out), "threads": self.threads}
            (work / "spec.json").write_text(json.dumps(spec))
            stdout = subprocess.DEVNULL
            log_file = None
            if self.step_log_dir is not None:
                self.step_log_dir.mkdir(parents=True, exist_ok=True)
                log_file = open(self.step_log_dir / f"{step.id.replace(':', '_')}.log", "ab")
                stdout = log_file
            env = dict(os.environ, OMP_NUM_THREADS=str(self.threads))
            # torch's OpenMP threads spin-wait by default; on a CPU shared with other processes
            # that made token-by-token generation ~10x slower (measured in the distill step)
            env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            try:
                proc = subprocess.run([sys.executable, "-m", "slim.steps.runner",
                                       str(work / "spec.json")], stdout=stdout, env=env)
            finally:
                if log_file:
                    log_file.close()
            res_file = work / "result.json"
            if not res_file.exists():
                sig = -proc.returncode if proc.returncode < 0 else None
                why = f"killed by signal {sig}" if sig else f"exit code {proc.returncode}"
                if sig == 9:
                    why += " (out of memory?)"
                raise StepFailed(step.id, "step_process_died", why)
            res = json.loads(res_file.read_text())
            r.peak_rss_bytes, r.peak_gpu_bytes = res.get("peak_rss_bytes"), res.get("peak_gpu_bytes")
            if not res["ok"]:
                if res.get("reason") == "disk_full":
                    info = dict(res.get("disk_full") or {})
                    info.setdefault("detail", res.get("message", ""))
                    info["path"] = info.get("path") or str(out)
                    raise DiskFull(step.id, describe(info), info)
                if res.get("user"):
                    raise StepFailed(step.id, res["reason"], res["message"])
                sys.stderr.write(res.get("traceback", ""))
                raise RuntimeError(f"bug in step {step.id} ({step.kind}): {res['message']}")
        finally:
            import shutil
            shutil.rmtree(work, ignore_errors=True)


def format_plan(resolved: list[Resolved]) -> str:
    lines = []
    for r in resolved:
        deps = ", ".join(f"{k}<-{v}" for k, v in r.step.deps.items())
        state = "cached" if r.cached else "RUN"
        lines.append(f"{state:6} {r.step.id:28} {r.key[:16]}  {r.step.desc}")
        if deps:
            lines.append(f"{'':6} {'':28} inputs: {deps}")
        if not r.cached:
            for why in r.why[:6]:
                lines.append(f"{'':6} {'':28} why: {why}")
    return "\n".join(lines)
