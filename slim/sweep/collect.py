"""Reading builds for a sweep: one summary row per build folder or member record."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slim.report.gates import failed_gates
from slim.report.headline import category_retention, headline_retention
from slim.report.headline import finite as _num


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
