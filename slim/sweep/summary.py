"""Summarise build folders, or a sweep dir's member records, into summary.{md,csv,json} and
frontier.png."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterable

from slim.fileio import atomic_write_text, write_json
from slim.sweep.collect import member_row
from slim.sweep.frontier import frontiers
from slim.sweep.plot import plot_frontier
from slim.sweep.render import render_csv, render_markdown

SCHEMA = "slim.sweep/v1"

MEMBER_FILE = "member.json"

EXPECTED_FILE = "members.expected.json"

OUTPUT_FILES = ("summary.md", "summary.csv", "summary.json", "frontier.png")


def summarise(build_dirs: Iterable, out_dir, *, trusted_keys=None, verify: bool = True,
              title: str = "", expected: int | None = None, plot: bool = True) -> dict:
    """Summarise build folders (paths, or member record dicts with ``build_dir``, ``name``,
    ``job_status`` 'completed'|'failed', ``error``, ``overrides``, ``seconds``) into
    ``out_dir``: summary.md, summary.csv, summary.json, frontier.png. Returns the summary.

    ``trusted_keys``: as for :func:`slim.verify.signature_state` (None: the key dir's keys).
    ``expected``: number of members the sweep launched (``complete`` is false while fewer
    have reported)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if trusted_keys is None and verify:
        try:
            from slim.signing.keys import load_trusted_keys
            trusted_keys = load_trusted_keys()
        except Exception:  # noqa: BLE001
            trusted_keys = None
    rows = [member_row(b, trusted_keys, verify) for b in build_dirs]
    cats = sorted({c for r in rows for c in r["retention"]})
    reported = sum(1 for r in rows if r["job_status"] in ("completed", "failed"))
    seen: dict[str, int] = {}
    for r in rows:
        if r.get("build_dir") and r["job_status"] != "failed":
            seen[r["build_dir"]] = seen.get(r["build_dir"], 0) + 1
    summary: dict[str, Any] = {
        "schema": SCHEMA, "title": title, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "out_dir": str(out), "expected": expected, "reported": reported,
        "complete": expected is None or reported >= expected,
        "categories": cats, "members": rows,
        "duplicates": sorted(Path(d).name for d, n in seen.items() if n > 1),
    }
    frontier = frontiers(rows)
    summary["frontier"] = frontier
    for r in rows:
        r["on_frontier"] = sorted(k for k, names in frontier.items() if r["member"] in names)
    if plot:
        try:
            summary["plot_panels"] = plot_frontier(rows, out / "frontier.png", title)
        except ImportError as e:
            summary["plot_panels"] = []
            summary["plot_error"] = f"matplotlib unavailable: {e}"
    write_json(out / "summary.json", summary, default=str)
    atomic_write_text(out / "summary.csv", render_csv(summary))
    atomic_write_text(out / "summary.md", render_markdown(summary))
    return summary


def read_members(sweep_dir: Path) -> list[dict]:
    recs = []
    for f in sweep_dir.glob(f"*/{MEMBER_FILE}"):
        try:
            recs.append(json.loads(f.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return sorted(recs, key=lambda r: (r.get("num") is None, r.get("num") or 0, r.get("name", "")))


def summarise_sweep(sweep_dir, *, trusted_keys=None, final: bool = False) -> dict:
    """(Re)write the summary of a sweep dir from its members' member.json records.
    Expected members that never reported are listed as 'not run'."""
    sweep_dir = Path(sweep_dir)
    recs = read_members(sweep_dir)
    expected = None
    ef = sweep_dir / EXPECTED_FILE
    if ef.is_file():
        try:
            exp = json.loads(ef.read_text(encoding="utf-8"))
            expected = len(exp["members"])
            if final:
                done = {r.get("num") for r in recs}
                for i, m in enumerate(exp["members"]):
                    if i not in done:
                        recs.append({"name": m.get("name") or " ".join(m["overrides"]),
                                     "build_dir": None, "num": i, "overrides": m["overrides"],
                                     "job_status": "not run",
                                     "error": "member did not report (interrupted or not launched)"})
        except (OSError, ValueError, KeyError):
            expected = None
    title = f"sweep {sweep_dir.name}"
    return summarise(recs, sweep_dir, trusted_keys=trusted_keys, title=title, expected=expected)
