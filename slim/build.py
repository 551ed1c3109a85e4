"""One build: validate -> plan -> execute through the cache -> publish builds/<name>/.

The build folder is assembled under ``builds/.staging/`` and renamed into place
only when complete and signed, so an interrupted build leaves nothing
half-written in ``builds/``. A failed build's events go to ``builds/.logs/``.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from slim.cache.store import ObjectStore
from slim.config.validate import estimate_only, validate
from slim.errors import SlimError
from slim.executor import EventLog, Executor, format_plan
from slim.naming import build_name  # noqa: F401  (re-exported: slim.sweep and tests import it here)
from slim.paths import resolve
from slim.planview import show_estimate
from slim.staging import StagingLease


def builds_dir(cfg) -> Path:
    return resolve(cfg.paths.builds) if Path(cfg.paths.builds).is_absolute() \
        else Path.cwd() / cfg.paths.builds


def open_store(cfg) -> ObjectStore:
    return ObjectStore(cfg.paths.cache)


def previous_materials(final: Path) -> dict[str, dict]:
    f = final / "steps.json"
    if not f.is_file():
        return {}
    try:
        return {s["id"]: s["material"] for s in json.loads(f.read_text())}
    except (ValueError, KeyError):
        return {}


class StepEcho:
    """One terminal line per step: ``done`` with its time and why it ran, ``cached`` or
    ``FAILED``. On a terminal a transient ``run`` line shows what runs until then (a step's
    progress bar takes its place); the steps' own output is in the build's logs/."""

    def __init__(self) -> None:
        self.why: dict[str, str] = {}
        self.tty = sys.stderr.isatty()

    def __call__(self, rec: dict) -> None:
        ev = rec["event"]
        clear = "\r\033[K" if self.tty else ""
        if ev == "started":
            why = rec.get("why") or []
            more = f" (+{len(why) - 1} more)" if len(why) > 1 else ""
            self.why[rec["step"]] = f"{(why[0] if why else '')[:70]}{more}"
            if self.tty:
                print(f"  run    {rec['step']:30} {self.why[rec['step']]}", end="\r",
                      file=sys.stderr, flush=True)
        elif ev == "finished":
            print(f"{clear}  done   {rec['step']:30} {rec['seconds']:8.1f} s  "
                  f"{self.why.get(rec['step'], '')}", file=sys.stderr)
        elif ev == "cache_hit":
            print(f"  cached {rec['step']}", file=sys.stderr)
        elif ev == "failed":
            print(f"{clear}  FAILED {rec['step']} ({rec.get('reason')})", file=sys.stderr)
        elif ev == "corrupt_entry_recomputed":
            print(f"  corrupt cache entry for {rec['step']} ({'; '.join(rec['problems'])}); "
                  f"recomputing", file=sys.stderr)


def run_build(cfg, quiet: bool = False, extra_report: dict | None = None) -> Path | None:
    """Build one concrete method (or, with ``plan=true`` / a weightless model, print the plan
    and estimates). method=auto is orchestrated one layer up, by :func:`slim.auto.run_auto`."""
    if cfg.hub_online:
        os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "0"
    validate(cfg)
    if estimate_only(cfg) or (cfg.plan and cfg.method.family == "auto"):
        show_estimate(cfg)
        return None
    if cfg.method.family == "auto":
        raise SlimError("method=auto chooses among builds: run it with slim.auto.run_auto "
                        "(python -m slim method=auto does)")

    from slim.plan import Planner
    plan = Planner(cfg).build()
    store = open_store(cfg)
    name = build_name(cfg)
    root = builds_dir(cfg)
    final = root / name
    previous = previous_materials(final)

    if cfg.plan:
        ex = Executor(store, EventLog(None), cfg.threads, previous=previous)
        resolved = ex.resolve(plan.steps)
        print(f"plan for {name} (cache {store.root}):")
        print(format_plan(resolved))
        show_estimate(cfg)
        return None

    # host id + pid + heartbeat lease: safe when builds/ is shared by hosts (slim/staging.py)
    lease = StagingLease.claim(root / ".staging", name)
    staging = lease.path
    log = EventLog(staging / "events.jsonl", None if quiet else StepEcho())
    from slim.planview import memory_model
    ex = Executor(store, log, cfg.threads, verify=cfg.verify_cache, previous=previous,
                  step_log_dir=staging / "logs", verbose=cfg.verbose,
                  memory_model=memory_model(cfg))
    t0 = time.time()
    print(f"building {name} (cache {store.root})", file=sys.stderr)
    try:
        resolved = ex.run(plan.steps)
        from slim.report.assemble import publish
        publish(cfg, plan, resolved, staging, final, seconds=time.time() - t0,
                extra=extra_report)
    except BaseException as e:
        _keep_failed_events(root, name, staging)
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, OSError):  # a full disk while assembling/publishing: not a bug
            from slim.diskspace import describe, disk_full_info
            from slim.errors import DiskFull
            info = disk_full_info(e, staging, guess=False)
            if info:
                raise DiskFull("publish", describe(info), info) from None
        raise
    finally:
        lease.release()
        try:
            (root / ".staging").rmdir()
        except OSError:
            pass
    if not quiet:
        from slim.report.summary import print_summary
        print_summary(final)
    return final


def _keep_failed_events(root: Path, name: str, staging: Path) -> None:
    """Copy a failed build's events to builds/.logs/ -- whole or not at all (a full disk)."""
    if not (staging / "events.jsonl").exists():
        return
    dest = root / ".logs" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.events.jsonl"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(staging / "events.jsonl", dest)
    except OSError as e:
        dest.unlink(missing_ok=True)
        print(f"slim: could not keep the failed build's events in {dest.parent}: {e}",
              file=sys.stderr)
