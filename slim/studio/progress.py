"""Builds in progress: the staging folders under ``builds/.staging/`` (see slim/build.py) and
their ``events.jsonl``, step by step, until the build lands in ``builds/<name>/``.

A staging folder is ``<name>-<pid>`` or, with a lease beside it (slim/staging.py),
``<name>-<host>-<pid>`` whose ``.lease`` file names the build. A build has *landed* when
its folder holds a report.json created at or after the moment the page started following
it, so an older report of the same name is not mistaken for the new one.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

STAGING = ".staging"
LOGS = ".logs"
LEASE_SUFFIX = ".lease"


def read_events(path: Path) -> list[dict]:
    """Every complete JSON line of an events.jsonl (a line being written is skipped)."""
    out = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("event"):
            out.append(rec)
    return out


def step_states(events: list[dict]) -> list[dict]:
    """One record per planned step, in plan order: state pending | running | done | cached
    | failed, with seconds and why it ran."""
    steps: dict[str, dict] = {}
    for e in events:
        sid = e.get("step")
        if not sid:
            continue
        s = steps.setdefault(sid, {"id": sid, "kind": e.get("kind"), "key": e.get("key"),
                                   "state": "pending", "seconds": None, "why": None,
                                   "cached_planned": None, "started": None})
        ev = e["event"]
        if ev == "planned":
            s["cached_planned"] = bool(e.get("cached"))
            s["why"] = (e.get("why") or [None])[0]
        elif ev == "started":
            s["state"], s["started"] = "running", e.get("t")
        elif ev == "finished":
            s["state"], s["seconds"] = "done", e.get("seconds")
        elif ev == "cache_hit":
            s["state"] = "cached"
        elif ev == "failed":
            s["state"], s["why"] = "failed", e.get("reason") or e.get("message")
    return list(steps.values())


def summarise(events: list[dict]) -> dict:
    steps = step_states(events)
    finished = sum(1 for s in steps if s["state"] in ("done", "cached"))
    running = [s["id"] for s in steps if s["state"] == "running"]
    return {"steps": steps, "finished": finished, "total": len(steps), "running": running,
            "started": events[0]["t"] if events else None,
            "last_event": events[-1]["t"] if events else None}


def _lease_name(folder: Path) -> str | None:
    try:
        rec = json.loads(folder.with_name(folder.name + LEASE_SUFFIX).read_text())
    except (OSError, ValueError):
        return None
    return rec.get("name") if isinstance(rec, dict) else None


def staging_builds(builds: Path) -> list[dict]:
    """Builds being assembled now: name, folder, events summary; newest first."""
    root = Path(builds) / STAGING
    out = []
    if not root.is_dir():
        return out
    for d in root.iterdir():
        if not d.is_dir() or d.name.startswith((".", "old-")):
            continue
        name = _lease_name(d)
        if not name:
            head, _, pid = d.name.rpartition("-")
            if not (head and pid.isdigit()):
                continue
            name = head
        ev = read_events(d / "events.jsonl")
        summ = summarise(ev)
        try:
            t0 = summ["started"] or d.stat().st_mtime
        except OSError:
            continue  # landed (renamed) while we looked
        out.append({"name": name, "dir": str(d), "started": t0, **summ})
    return sorted(out, key=lambda b: -b["started"])


def _created_epoch(report: dict) -> float | None:
    c = report.get("created")
    if not isinstance(c, str):
        return None
    try:
        t = _dt.datetime.fromisoformat(c.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.timestamp()


def landed(builds: Path, name: str, after: float) -> bool:
    """builds/<name>/report.json exists and was created at or after ``after`` (epoch s;
    report times have 1 s resolution)."""
    p = Path(builds) / name / "report.json"
    try:
        rep = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    t = _created_epoch(rep)
    return t is not None and t >= int(after)


def failed_log(builds: Path, name: str, after: float) -> Path | None:
    """The events log a failed build left in builds/.logs/ at or after ``after``."""
    root = Path(builds) / LOGS
    if not root.is_dir():
        return None
    cands = [p for p in root.glob(f"{name}-*.events.jsonl") if p.stat().st_mtime >= after - 1]
    return max(cands, key=lambda p: p.stat().st_mtime) if cands else None


def progress(builds: Path, name: str, after: float, job=None) -> dict:
    """Where build ``name`` stands: running (with its steps) | starting | done | failed |
    unknown. ``job``: the studio's own launch of it, if any (slim.studio.launch.Job)."""
    live = [b for b in staging_builds(builds) if b["name"] == name]
    if live:
        b = live[0]
        return {"state": "running", "name": name, **{k: b[k] for k in
                ("steps", "finished", "total", "running", "started", "last_event")}}
    if landed(builds, name, after):
        ev = read_events(Path(builds) / name / "events.jsonl")
        return {"state": "done", "name": name, "url": f"/build/{name}/", **summarise(ev)}
    if job is not None:
        rc = job.poll()
        if rc is None:
            return {"state": "starting", "name": name, "log": job.log_tail()}
        log = failed_log(builds, name, after)
        return {"state": "failed", "name": name, "returncode": rc, "log": job.log_tail(),
                **summarise(read_events(log) if log else [])}
    log = failed_log(builds, name, after)
    if log is not None:
        return {"state": "failed", "name": name, "log": f"events kept in {log}",
                **summarise(read_events(log))}
    return {"state": "unknown", "name": name, "steps": [], "finished": 0, "total": 0}
