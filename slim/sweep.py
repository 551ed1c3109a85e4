"""Sweep summaries: one table and one size-vs-quality plot for every member of a sweep.

A Hydra multirun (``python -m slim -m method=q8_0,q5_k_m,q4_k_m hardware=apple8gb``)
runs one build per member through the shared cache. The :class:`SweepSummary`
callback (``hydra.callbacks.sweep_summary`` in ``conf/config.yaml``) records
each member as it ends -- including failed ones, with their error -- in
``<sweep dir>/<job num>/member.json`` and writes, into the sweep dir
(``builds/_sweeps/<timestamp>/``):

* ``summary.md``   -- Markdown table: size, bpw, fidelity, retention, fit, status, signature
* ``summary.csv``  -- the same, one row per member, one column per probe category
* ``summary.json`` -- the same rows with full detail (schema ``slim.sweep/v1``)
* ``frontier.png`` -- size (MB) against mean probe retention and against 1 - KLD, every
  member labelled, the Pareto frontier (smaller and better) drawn as a line

Member records go to disk rather than the callback's memory because launchers
(joblib, submitit, Ray) run ``on_job_end`` in other processes or on other
machines. The summary is rewritten after every member (under a file lock), so
a sweep that stops early -- Hydra raises after a failed member and then never
calls ``on_multirun_end`` -- still leaves a summary naming every member that ran;
``complete`` in summary.json says whether every expected member reported.

Also usable without Hydra::

    python -m slim.sweep summarise builds/a builds/b --out DIR   # any build folders
    python -m slim.sweep resummarise builds/_sweeps/<timestamp>    # a sweep dir, again
    python -m slim.sweep metrics builds/<name> OUT.json           # flat metrics (DVC)
    python -m slim.sweep targets ci                               # build names in params.yaml
    python -m slim.sweep summarise-targets ci --out DIR           # summarise those builds
"""
from __future__ import annotations

from slim.report.gates import failed_gates
from slim.report.headline import HEADLINE_LABEL, category_retention, headline_retention
from slim.report.headline import finite as _num

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

SCHEMA = "slim.sweep/v1"
MEMBER_FILE = "member.json"
EXPECTED_FILE = "members.expected.json"
OUTPUT_FILES = ("summary.md", "summary.csv", "summary.json", "frontier.png")


# ---------------------------------------------------------------- reading builds

def metrics_of(report: dict) -> dict:
    """The numbers a sweep compares, flat enough for ``dvc metrics show``."""
    art = report.get("artifact") or {}
    fid = (report.get("metrics") or {}).get("fidelity") or {}
    fit = report.get("fit") or {}
    size = _num(art.get("bytes"))
    kld = _num(fid.get("kld_mean"))
    return {
        "size_mb": round(size / 1e6, 4) if size is not None else None,
        "bpw": _num(art.get("bpw")),
        "size_vs_parent": _num((art.get("size_vs_parent") or {}).get("ratio")),
        "ppl_ratio": _num(fid.get("ppl_ratio")),
        "kld_mean": kld,
        "one_minus_kld": (1.0 - kld) if kld is not None else None,
        "top1_agreement": _num(fid.get("top1_agreement")),
        "runtime": fid.get("runtime_child"),
        "behavioral_retention": headline_retention(report),
        "retention": category_retention(report),
        "fits": fit.get("fits") if isinstance(fit.get("fits"), bool) else None,
        "accepted": report.get("status") == "accepted",
        "status": report.get("status"),
    }


def _signature(build: Path, trusted) -> tuple[str, str]:
    try:
        from slim.verify import signature_state
        return signature_state(build, trusted)
    except Exception as e:  # noqa: BLE001  (a summary names the problem, it does not stop)
        return "unknown", f"{type(e).__name__}: {e}"


def _as_record(item) -> dict:
    if isinstance(item, dict):
        rec = dict(item)
    else:
        rec = {"build_dir": str(item)}
    rec["build_dir"] = str(Path(rec["build_dir"]).expanduser()) if rec.get("build_dir") else None
    rec.setdefault("name", Path(rec["build_dir"]).name if rec["build_dir"] else "?")
    rec.setdefault("job_status", "completed")
    return rec


def member_row(item, trusted=None, verify: bool = True) -> dict:
    """One summary row: a build folder, or a member record (dict with build_dir, name,
    job_status, error, overrides, seconds, num)."""
    rec = _as_record(item)
    row: dict[str, Any] = {
        "member": rec["name"], "num": rec.get("num"), "overrides": rec.get("overrides") or [],
        "job_status": rec["job_status"], "error": rec.get("error"), "seconds": rec.get("seconds"),
        "build_dir": rec["build_dir"], "target": rec.get("target") or {},
    }
    row.update({k: None for k in ("size_mb", "size_vs_parent", "bpw", "ppl_ratio", "kld_mean",
                                  "one_minus_kld", "top1_agreement", "behavioral_retention",
                                  "runtime", "fits", "accepted")})
    row.update(retention={}, status=None, signature="none", signature_detail="",
               cached_steps=None, build_seconds=None, format=None, hardware=None)
    build = Path(rec["build_dir"]) if rec["build_dir"] else None
    if rec["job_status"] != "completed":
        # failed / not run: a stale folder from an earlier run may exist; it is not this member's
        row["status"] = rec["job_status"]
        return row
    report_file = build / "report.json" if build else None
    if rec.get("plan_only"):
        row["status"] = "plan only"
        return row
    if not (report_file and report_file.is_file()):
        row["status"] = "no build"
        if rec["job_status"] == "completed" and not row["error"]:
            row["error"] = f"no report.json in {build}" if build else "no build folder"
        return row
    try:
        report = json.loads(report_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        row.update(status="unreadable", error=f"{report_file}: {e}")
        return row
    row.update(metrics_of(report))
    row["member"] = rec.get("name") if isinstance(item, dict) else (report.get("build") or rec["name"])
    row["target"] = report.get("target") or row["target"]
    row["hardware"] = (report.get("target") or {}).get("hardware")
    row["format"] = (report.get("artifact") or {}).get("format")
    row["build_seconds"] = _num(report.get("build_seconds"))
    steps = report.get("steps") or []
    if steps:
        row["cached_steps"] = f"{sum(1 for s in steps if s.get('cached'))}/{len(steps)}"
    row["gates_failed"] = failed_gates(report)
    if verify:
        row["signature"], row["signature_detail"] = _signature(build, trusted)
    else:
        row["signature"] = "signed" if (report.get("signature") or {}).get("signed") else "unsigned"
    return row


# ---------------------------------------------------------------- frontier

def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats: smaller or equal x and larger or equal y,
    strictly better in one. Sorted by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def short_labels(rows: list[dict]) -> list[str]:
    """Label points by what differs between members (method, or method+hardware ...),
    falling back to the build name."""
    keys = ("model", "method", "hardware")
    known = [r.get("target") or {} for r in rows if (r.get("target") or {}).get("method")]
    varying = [k for k in keys if len({t.get(k) for t in known}) > 1]
    labels = []
    for r in rows:
        t = r.get("target") or {}
        if varying and all(t.get(k) for k in varying):
            labels.append("-".join(str(t[k]) for k in varying))
        else:
            labels.append(r["member"])
    if len(set(labels)) < len(labels):
        labels = [r["member"] for r in rows]
    return labels


def plot_frontier(rows: list[dict], path: Path, title: str = "") -> list[str]:
    """Write the size-vs-quality plot; return the panels drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = short_labels(rows) if rows else []
    panels = []
    for key, ylabel in (("behavioral_retention", f"mean {HEADLINE_LABEL} (child / parent)"),
                        ("one_minus_kld", "1 − KLD (fidelity vs parent)")):
        if any(r.get("size_mb") is not None and r.get(key) is not None for r in rows):
            panels.append((key, ylabel))
    skipped = [f"{r['member']} ({r['status']})" for r in rows
               if r.get("size_mb") is None or all(r.get(k) is None for k, _ in panels)]
    ncols = max(1, len(panels))
    fig, axes = plt.subplots(1, ncols, figsize=(6.4 * ncols, 5.2), squeeze=False)
    for ax, (key, ylabel) in zip(axes[0], panels):
        idx = [i for i, r in enumerate(rows) if r.get("size_mb") is not None and r.get(key) is not None]
        xs = [rows[i]["size_mb"] for i in idx]
        ys = [rows[i][key] for i in idx]
        front = [idx[j] for j in pareto_front(list(zip(xs, ys)))]
        fx = [rows[i]["size_mb"] for i in front]
        fy = [rows[i][key] for i in front]
        ax.plot(fx, fy, "-", color="tab:red", lw=1.8, alpha=0.8, zorder=1,
                label="Pareto frontier (smaller and better)")
        for i in idx:
            r = rows[i]
            on = i in front
            rejected = r.get("status") == "rejected"
            fits = r.get("fits")
            col = "tab:red" if on else "tab:blue"
            ax.scatter([r["size_mb"]], [r[key]], s=70 if on else 45, zorder=3,
                       marker="X" if rejected else "o",
                       facecolors=col if fits is not False else "white", edgecolors=col,
                       linewidths=1.5)
        # legend proxies
        ax.scatter([], [], marker="o", color="tab:blue", label="member")
        ax.scatter([], [], marker="o", color="tab:red", label="member on frontier")
        if any(rows[i].get("fits") is False for i in idx):
            ax.scatter([], [], marker="o", facecolors="white", edgecolors="gray",
                       label="does not fit the hardware")
        if any(rows[i].get("status") == "rejected" for i in idx):
            ax.scatter([], [], marker="X", color="gray", label="rejected by a gate")
        if xs:
            span_x = (max(xs) - min(xs)) or max(abs(max(xs)) * 0.2, 1e-3)
            span_y = (max(ys) - min(ys)) or max(abs(max(ys)) * 0.05, 1e-3)
            ax.set_xlim(min(xs) - 0.25 * span_x, max(xs) + 0.35 * span_x)
            ax.set_ylim(min(ys) - 0.3 * span_y, max(ys) + 0.3 * span_y)
        ax.set_xlabel("artifact size (MB)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        _label_points(ax, fig, xs, ys, [labels[i] for i in idx], list(zip(fx, fy)))
    if not panels:
        ax = axes[0][0]
        ax.axis("off")
        ax.text(0.5, 0.5, "no member has both a size and a quality metric",
                ha="center", va="center", fontsize=12)
    known = [r.get("target") or {} for r in rows if (r.get("target") or {}).get("method")]
    fixed = [f"{k} {known[0][k]}" for k in ("model", "hardware")
             if known and known[0].get(k) and len({t.get(k) for t in known}) == 1]
    full = " · ".join(x for x in [title, ", ".join(fixed)] if x)
    if full:
        fig.suptitle(full, fontsize=11)
    # one legend for the figure, under the panels: inside an axis it covered members
    seen = {}
    for ax, _ in zip(axes[0], panels):
        for h, n in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(n, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=len(seen),
                   fontsize=8, frameon=False)
    if skipped:
        fig.text(0.01, 0.045, "not plotted: " + ", ".join(skipped), fontsize=8, color="dimgray",
                 ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, (0.045 if seen else 0) + (0.04 if skipped else 0), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=130)
    plt.close(fig)
    os.replace(tmp, path)
    return [k for k, _ in panels]


def _label_points(ax, fig, xs, ys, labels, line_xy=()) -> None:
    """Annotate each point next to it; try offsets until the label overlaps no other label,
    point, frontier segment or the legend, and stays inside the axes."""
    if not xs:
        return
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axbox = ax.get_window_extent(renderer)
    pts = [tuple(ax.transData.transform((x, y))) for x, y in zip(xs, ys)]
    seg = [tuple(ax.transData.transform(p)) for p in line_xy]
    for (x0, y0), (x1, y1) in zip(seg, seg[1:]):
        pts += [(x0 + (x1 - x0) * t / 24, y0 + (y1 - y0) * t / 24) for t in range(1, 24)]
    placed = []
    leg = ax.get_legend()
    if leg is not None:
        placed.append(leg.get_window_extent(renderer))
    dirs = [(1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0)]
    cands = [(r * dx, r * dy) for r in (9, 24, 40, 58, 78) for dx, dy in dirs]
    order = sorted(range(len(xs)), key=lambda i: (xs[i], ys[i]))
    for i in order:
        chosen = None
        for n, (dx, dy) in enumerate(cands):
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
            far = abs(dx) + abs(dy) > 12
            t = ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points",
                            ha=ha, va=va, fontsize=9.5,
                            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.75),
                            arrowprops=dict(arrowstyle="-", color="dimgray", lw=0.7,
                                            shrinkA=0, shrinkB=5) if far else None, zorder=4)
            bb = t.get_window_extent(renderer)
            ok = (not any(bb.overlaps(o) for o in placed)
                  and not any(bb.x0 - 4 <= px <= bb.x1 + 4 and bb.y0 - 4 <= py <= bb.y1 + 4
                              for px, py in pts)
                  and bb.x0 >= axbox.x0 and bb.x1 <= axbox.x1
                  and bb.y0 >= axbox.y0 and bb.y1 <= axbox.y1)
            if ok or n == len(cands) - 1:
                chosen = bb
                break
            t.remove()
        placed.append(chosen)


# ---------------------------------------------------------------- writing

COLUMNS = [("member", "member"), ("status", "status"), ("size_mb", "size MB"),
           ("size_vs_parent", "of parent"), ("bpw", "bpw"),
           ("ppl_ratio", "PPL ratio"), ("kld_mean", "KLD"), ("top1_agreement", "top-1"),
           ("behavioral_retention", HEADLINE_LABEL), ("runtime", "eval runtime"), ("fits", "fits"),
           ("signature", "signature"),
           ("cached_steps", "cached steps"), ("seconds", "seconds"), ("on_frontier", "Pareto")]


def _fmt(key: str, v) -> str:
    if key == "on_frontier":
        return ", ".join({"behavioral_retention": "retention", "one_minus_kld": "KLD"}.get(x, x)
                         for x in v) if v else ""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if key == "size_mb":
        return f"{v:.2f}" if v < 100 else f"{v:.1f}"
    if key == "size_vs_parent":
        return f"{100 * v:.1f}%"
    if key == "kld_mean":
        return f"{v:.5f}"
    if key == "top1_agreement":
        return f"{100 * v:.1f}%"
    if key in ("ppl_ratio", "behavioral_retention", "retention", "bpw"):
        return f"{v:.3f}" if key != "bpw" else f"{v:.2f}"
    if key == "seconds":
        return f"{v:.1f}"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: dict) -> str:
    rows = summary["members"]
    out = [f"# Sweep summary{': ' + summary['title'] if summary.get('title') else ''}", ""]
    out.append(f"{len(rows)} member(s), written {summary['created']}"
               + ("" if summary.get("complete", True) else
                  f" — INCOMPLETE: {summary.get('reported', len(rows))} of "
                  f"{summary.get('expected')} expected members reported") + ".")
    if summary.get("frontier"):
        for key, names in summary["frontier"].items():
            out.append(f"Pareto frontier (size vs {key.replace('_', ' ')}): {', '.join(names) or '–'}.")
    out.append("")
    out.append("| " + " | ".join(h for _, h in COLUMNS) + " |")
    out.append("|" + "|".join("---" if k in ("member", "status", "signature", "on_frontier") else "---:"
                              for k, _ in COLUMNS) + "|")
    for r in rows:
        out.append("| " + " | ".join(_md_cell(_fmt(k, r.get(k))) for k, _ in COLUMNS) + " |")
    cats = summary.get("categories") or []
    if cats:
        labels = short_labels(rows)
        out += ["", "## Retention per probe category (child score / parent score)", "",
                "| category | " + " | ".join(_md_cell(m) for m in labels) + " |",
                "|---|" + "---:|" * len(labels)]
        for c in cats:
            out.append(f"| {c} | " + " | ".join(_fmt("retention", r["retention"].get(c))
                                                 for r in rows) + " |")
    notes = [r for r in rows if r.get("error") or r.get("signature_detail") or r.get("gates_failed")]
    if notes:
        out += ["", "## Notes", ""]
        for r in notes:
            if r.get("error"):
                out.append(f"- **{r['member']}** ({r['status']}): {_md_cell(str(r['error']))[:600]}")
            if r.get("gates_failed"):
                out.append(f"- **{r['member']}** failed gates: {'; '.join(r['gates_failed'])}")
            if r.get("signature_detail"):
                out.append(f"- **{r['member']}** signature {r['signature']}: {r['signature_detail']}")
    if summary.get("duplicates"):
        out += ["", "**Warning:** members share a build folder, the later overwrote the earlier: "
                + ", ".join(summary["duplicates"]) + " (set build_name per member)."]
    out += ["", "Columns: size = artifact bytes / 1e6; bpw = bits per weight; PPL ratio, KLD and "
            "top-1 compare child and parent on the same held-out tokens, in the eval runtime "
            "(both parent and child run there: llama.cpp for GGUF, transformers for folders); "
            "behavioral retention = mean of the behavioral categories' child/parent probe scores (safety and leakage are gated "
            "on their own, see slim/report/headline.py); fits = fits the hardware tier with its KV "
            "cache; signature = `python -m slim.verify` state; cached steps = steps served by the "
            "shared cache.", "", "![size vs quality](frontier.png)", ""]
    return "\n".join(out)


def render_csv(summary: dict) -> str:
    cats = summary.get("categories") or []
    head = ["member", "status", "size_mb", "size_vs_parent", "bpw", "ppl_ratio", "kld_mean",
            "one_minus_kld", "top1_agreement", "behavioral_retention", "runtime"] + \
        [f"retention/{c}" for c in cats] + \
        ["fits", "signature", "cached_steps", "seconds", "build_seconds", "error", "build_dir",
         "overrides"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for r in summary["members"]:
        vals = []
        for h in head:
            if h.startswith("retention/"):
                v = r["retention"].get(h[len("retention/"):])
            elif h == "overrides":
                v = " ".join(r.get("overrides") or [])
            else:
                v = r.get(h)
            if isinstance(v, float):
                v = round(v, 6)
            vals.append("" if v is None else v)
        w.writerow(vals)
    return buf.getvalue()


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
    frontier = {}
    for key in ("behavioral_retention", "one_minus_kld"):
        idx = [i for i, r in enumerate(rows) if r.get("size_mb") is not None and r.get(key) is not None]
        if idx:
            front = pareto_front([(rows[i]["size_mb"], rows[i][key]) for i in idx])
            frontier[key] = [rows[idx[j]]["member"] for j in front]
    summary["frontier"] = frontier
    for r in rows:
        r["on_frontier"] = sorted(k for k, names in frontier.items() if r["member"] in names)
    if plot:
        try:
            summary["plot_panels"] = plot_frontier(rows, out / "frontier.png", title)
        except ImportError as e:
            summary["plot_panels"] = []
            summary["plot_error"] = f"matplotlib unavailable: {e}"
    _write_text(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    _write_text(out / "summary.csv", render_csv(summary))
    _write_text(out / "summary.md", render_markdown(summary))
    return summary


# ---------------------------------------------------------------- Hydra callback

def _builds_root(cfg) -> Path:
    p = Path(str(cfg.paths.builds)).expanduser()
    if p.is_absolute():
        return p
    try:
        cwd = Path(str(cfg.hydra.runtime.cwd))
    except Exception:  # noqa: BLE001
        cwd = Path.cwd()
    return cwd / p


def member_record(config: DictConfig, job_return=None, seconds: float | None = None) -> dict:
    """What a sweep needs to know about one member, from its job config."""
    from slim.build import build_name
    name = build_name(config)
    rec = {"name": name, "build_dir": str(_builds_root(config) / name),
           "target": {k: str(OmegaConf.select(config, f"{k}.name", default=None))
                      for k in ("model", "method", "hardware", "probes", "calibration")},
           "num": OmegaConf.select(config, "hydra.job.num", default=None),
           "overrides": list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or []),
           "seconds": round(seconds, 2) if seconds is not None else None,
           "job_status": "completed", "error": None, "host": os.uname().nodename, "pid": os.getpid(),
           "plan_only": bool(OmegaConf.select(config, "plan", default=False))}
    if job_return is not None:
        status = getattr(getattr(job_return, "status", None), "name", "UNKNOWN")
        if status != "COMPLETED":
            err = getattr(job_return, "_return_value", None)
            rec["job_status"] = "failed"
            rec["error"] = f"{type(err).__name__}: {err}" if isinstance(err, BaseException) else str(err)
    return rec


def expected_members(config: DictConfig) -> list[list[str]] | None:
    """Override lists the basic sweeper will launch (None for other sweepers)."""
    try:
        sweeper = str(OmegaConf.select(config, "hydra.sweeper._target_", default=""))
        if not sweeper.endswith("BasicSweeper"):
            return None
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser
        task = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
        params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
        extra = [f"{k}={v}" for k, v in params.items()]
        parsed = OverridesParser.create().parse_overrides(extra + task)
        batches = BasicSweeper.split_arguments(parsed, None)
        return [list(o) for batch in batches for o in batch]
    except Exception:  # noqa: BLE001
        return None


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


def _trusted_from_cfg(cfg) -> dict | None:
    try:
        from slim.signing.keys import load_trusted_keys
        trusted = list(OmegaConf.select(cfg, "signing.trusted", default=[]) or [])
        return load_trusted_keys(trusted or None, OmegaConf.select(cfg, "signing.key_dir", default=None))
    except Exception:  # noqa: BLE001
        return None


class SweepSummary(Callback):
    """Hydra callback: record every member of a multirun and summarise the sweep.

    Enable in conf/config.yaml::

        hydra:
          callbacks:
            sweep_summary:
              _target_: slim.sweep.SweepSummary
    """

    def __init__(self, every_job: bool = True) -> None:
        self.every_job = every_job
        self._t0: float | None = None

    # -- main process
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        exp = expected_members(config)
        if exp is not None:
            _write_text(sweep_dir / EXPECTED_FILE, json.dumps(
                {"members": [{"overrides": o} for o in exp]}, indent=2) + "\n")
        # Parallel members would race to create the default signing key on first use
        # (each would write its own and sign with it): create it once, here, first.
        try:
            if OmegaConf.select(config, "signing.enabled", default=False) and \
                    not OmegaConf.select(config, "signing.key", default=None):
                from slim.signing.keys import ensure_signing_key
                _, kid, path, created = ensure_signing_key(
                    None, OmegaConf.select(config, "signing.key_dir", default=None))
                if created:
                    print(f"slim: created signing key {kid} at {path}", file=sys.stderr)
        except Exception as e:  # noqa: BLE001
            print(f"slim: sweep: could not prepare the signing key ({e})", file=sys.stderr)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        summ = self._summarise(sweep_dir, config, final=True)
        if summ is not None:
            n_ok = sum(1 for r in summ["members"] if r["job_status"] == "completed")
            print(f"sweep summary: {sweep_dir}/summary.md ({n_ok}/{len(summ['members'])} members "
                  f"built; frontier.png)", file=sys.stderr)

    # -- job process (may be another process or machine)
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._t0 = time.time()

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if "MULTIRUN" not in str(OmegaConf.select(config, "hydra.mode", default="")):
            return  # a single run has no sweep to summarise
        seconds = time.time() - self._t0 if self._t0 else None
        try:
            rec = member_record(config, job_return, seconds)
        except Exception as e:  # noqa: BLE001
            rec = {"name": f"job {OmegaConf.select(config, 'hydra.job.num', default='?')}",
                   "build_dir": None, "job_status": "failed", "error": f"cannot name the build: {e}",
                   "num": OmegaConf.select(config, "hydra.job.num", default=None),
                   "overrides": list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])}
        out = Path(str(config.hydra.runtime.output_dir))
        out.mkdir(parents=True, exist_ok=True)
        _write_text(out / MEMBER_FILE, json.dumps(rec, indent=2, sort_keys=True) + "\n")
        if self.every_job:
            self._summarise(Path(str(config.hydra.sweep.dir)), config, final=False)

    def _summarise(self, sweep_dir: Path, config, final: bool) -> dict | None:
        from filelock import FileLock
        try:
            with FileLock(str(sweep_dir / ".summary.lock")):
                return summarise_sweep(sweep_dir, trusted_keys=_trusted_from_cfg(config), final=final)
        except Exception as e:  # noqa: BLE001  (a summary failure must not fail the sweep)
            print(f"slim: sweep summary failed: {type(e).__name__}: {e}", file=sys.stderr)
            return None


# ---------------------------------------------------------------- DVC helpers and CLI

def write_metrics(build_dir, out_file) -> dict:
    """Flat metrics of one build, written outside its (signed) folder for DVC."""
    build = Path(build_dir)
    report = json.loads((build / "report.json").read_text(encoding="utf-8"))
    m = {"build": report.get("build") or build.name, **metrics_of(report)}
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_text(out, json.dumps(m, indent=2, sort_keys=True) + "\n")
    return m


def targets(group: str, params_file="params.yaml") -> list[str]:
    p = OmegaConf.load(params_file)
    sel = OmegaConf.select(p, group)
    if sel is None:
        raise SystemExit(f"no '{group}' in {params_file}")
    return [str(k) for k in sel.keys()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m slim.sweep", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summarise", help="summarise build folders into --out")
    s.add_argument("builds", nargs="+")
    s.add_argument("--out", required=True)
    s.add_argument("--title", default="")
    s.add_argument("--no-verify", action="store_true", help="skip signature verification")
    r = sub.add_parser("resummarise", help="rewrite a sweep dir's summary from its member.json files")
    r.add_argument("sweep_dir")
    m = sub.add_parser("metrics", help="write one build's flat metrics JSON (for dvc metrics)")
    m.add_argument("build")
    m.add_argument("out")
    st = sub.add_parser("summarise-targets",
                        help="summarise the builds of a target list in params.yaml (DVC stage)")
    st.add_argument("group")
    st.add_argument("--out", required=True)
    st.add_argument("--params", default="params.yaml")
    st.add_argument("--builds", default="builds")
    st.add_argument("--title", default="")
    t = sub.add_parser("targets", help="print the build names of a target list in params.yaml")
    t.add_argument("group")
    t.add_argument("--params", default="params.yaml")
    a = ap.parse_args(argv)
    if a.cmd == "summarise":
        summ = summarise(a.builds, a.out, title=a.title, verify=not a.no_verify)
        print(f"{a.out}/summary.md: {len(summ['members'])} members")
    elif a.cmd == "resummarise":
        summarise_sweep(a.sweep_dir, final=True)
        print(f"{a.sweep_dir}/summary.md")
    elif a.cmd == "metrics":
        write_metrics(a.build, a.out)
    elif a.cmd == "summarise-targets":
        dirs = [Path(a.builds) / n for n in targets(a.group, a.params)]
        summ = summarise(dirs, a.out, title=a.title or f"{a.group} targets")
        bad = [r["member"] for r in summ["members"]
               if r["status"] not in ("accepted", "rejected", "inconclusive", "ungated")]
        print(f"{a.out}/summary.md: {len(dirs)} targets" + (f"; missing: {', '.join(bad)}" if bad else ""))
        if bad:
            return 1
    elif a.cmd == "targets":
        print("\n".join(targets(a.group, a.params)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
