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
    devices: list | None = None      # what the step computed on (slim.steps.base.note_device)
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
    """Params with the step's defaults filled in, so a changed default changes the key.

    A field declared with ``metadata={"key": "when_set"}`` (a param added to an existing step)
    is in the key only when it differs from its default, so the keys of every step that does
    not use it stay those from before the field existed."""
    P = getattr(step_module(step.kind), "Params", None)
    if P is None:
        return dict(step.params)
    out = dataclasses.asdict(P(**step.params))
    for f in dataclasses.fields(P):
        if f.metadata.get("key") == "when_set" and out.get(f.name) == f.default:
            del out[f.name]
    return out


class Executor:
    def __init__(self, store: ObjectStore, log: EventLog, threads: int | None = None,
                 verify: bool = False, previous: dict[str, dict] | None = None,
                 step_log_dir: Path | None = None, verbose: bool = False,
                 memory_model: dict | None = None):
        self.store = store
        self.log = log
        self.threads = threads or os.cpu_count() or 1
        self.verify = verify
        self.previous = previous or {}
        self.step_log_dir = step_log_dir
        self.verbose = verbose
        self.resolved: dict[str, Resolved] = {}
        #: the parent's size for the memory preflight (slim.planview.memory_model); None: no check
        self.memory_model = memory_model

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
            libs = tuple(getattr(mod, "LIBS", ()))
            extra = getattr(mod, "extra_libs", None)   # libraries only some params use
            if extra is not None:
                libs += tuple(extra(step.params))
            key, material = step_key(step.kind, mod.VERSION, full_params(step), inputs,
                                     lib_versions(libs))
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
            self._check_inputs(step, inputs)
            need = self._preflight(step)
            self.log.emit("started", step=step.id, kind=step.kind, key=r.key, why=r.why, **need)
            self._subprocess(step, r, inputs, out)
            self._check_inputs(step, inputs)   # an edit while the step read them: not cached

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
                                      ("peak_gpu_bytes", r.peak_gpu_bytes),
                                      ("devices", r.devices)) if v is not None}
            self.log.emit("finished", step=step.id, key=r.key, seconds=r.seconds, **mem)
        else:
            self.log.emit("cache_hit", step=step.id, key=r.key)

    def _preflight(self, step: Step) -> dict:
        """Fail before a step starts when its estimated peak memory exceeds what is free
        (slim.hardware.host); returns the estimate for the 'started' event."""
        if self.memory_model is None:
            return {}
        from slim.hardware.host import check_enabled, free_vram, preflight_problem
        from slim.steps.base import memory_need
        need = memory_need(step.kind, step.params, self.memory_model)
        if check_enabled():
            vram = free_vram() if need.get("vram") else None
            problem = preflight_problem(step.id, need, vram=vram)
            if problem:
                raise StepFailed(step.id, "not_enough_memory", problem)
        return {"need_ram_bytes": int(need["ram"]),
                **({"need_vram_bytes": int(need["vram"])} if need.get("vram") else {})}

    def _check_inputs(self, step: Step, inputs: dict) -> None:
        """A user's files an input references (a 16-bit folder imported by digest) still have
        their digests (stat-keyed memo: unchanged files are not re-read)."""
        from slim.models.hf_io import check_references
        for name in step.deps:
            try:
                check_references(Path(inputs[name]), self.store.memo, step.id)
            except SlimError as e:
                raise StepFailed(step.id, e.reason, str(e)) from None

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
            log_path = None
            if self.step_log_dir is not None:
                self.step_log_dir.mkdir(parents=True, exist_ok=True)
                log_path = self.step_log_dir / f"{step.id.replace(':', '_')}.log"
            env = dict(os.environ, OMP_NUM_THREADS=str(self.threads))
            if getattr(step_module(step.kind), "OMP_PASSIVE", False):
                # torch's OpenMP threads spin-wait between ops; on a CPU shared with other
                # processes that made token-by-token generation ~10x slower (distill step).
                # Not for every step: llama.cpp's CPU backend is built on the same OpenMP and
                # waits at a barrier per op; passive waiting made batched probe decoding at
                # 2 threads 1.6x slower than libgomp's default short spin (docs/evaluation_speed.md)
                env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            returncode = run_step_process([sys.executable, "-m", "slim.steps.runner",
                                           str(work / "spec.json")], env, log_path, self.verbose)
            res_file = work / "result.json"
            if not res_file.exists():
                sig = -returncode if returncode < 0 else None
                why = f"killed by signal {sig}" if sig else f"exit code {returncode}"
                if sig == 9:
                    why += " (out of memory?)"
                if log_path is not None and not self.verbose:
                    sys.stderr.write(log_tail(log_path))
                raise StepFailed(step.id, "step_process_died", why)
            res = json.loads(res_file.read_text())
            r.peak_rss_bytes, r.peak_gpu_bytes = res.get("peak_rss_bytes"), res.get("peak_gpu_bytes")
            r.devices = res.get("devices")
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


def _terminal_fd() -> int | None:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a capture without an fd
        return None


def run_step_process(argv: list[str], env: dict, log_path: Path | None, verbose: bool) -> int:
    """Run a step process; return its exit code.

    With a log file, everything the process writes to stdout and stderr (library loggers,
    llama.cpp's converter, C code, warnings) goes to it; only its progress bars reach the
    terminal, through a dup of our stderr it receives as ``SLIM_CONSOLE_FD``. ``verbose``
    copies all of it to the terminal as well. Without a log file stdout is dropped and
    stderr is the terminal's, as for any child."""
    from slim.steps.runner import CONSOLE_FD_ENV, LOGGED_ENV
    if log_path is None:
        return subprocess.run(argv, stdout=subprocess.DEVNULL, env=env).returncode
    env = dict(env, **{LOGGED_ENV: "1"})
    with open(log_path, "ab") as log:
        if verbose:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            out = getattr(sys.stderr, "buffer", None)
            for chunk in iter(lambda: proc.stdout.read1(1 << 16), b""):
                log.write(chunk)
                if out is not None:
                    out.write(chunk)
                    out.flush()
            return proc.wait()
        term = _terminal_fd()
        if term is None:
            return subprocess.run(argv, stdout=log, stderr=log, env=env).returncode
        console = os.dup(term)
        try:
            return subprocess.run(argv, stdout=log, stderr=log, pass_fds=(console,),
                                  env=dict(env, **{CONSOLE_FD_ENV: str(console)})).returncode
        finally:
            os.close(console)


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a step log, to show when its process died without a result."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").replace("\r", "\n")
    except OSError:
        return ""
    tail = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    return "".join(f"  | {ln}\n" for ln in tail)


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
