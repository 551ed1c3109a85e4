"""Reading a report's gate records (``report["gates"]``: one dict per check).

Kept apart from assembly so the card, registry, sweep and auto code read gates the same way
without importing the planner. Records carry ``outcome`` (pass | fail | inconclusive |
unverified); older reports had only ``passed`` (True | False | None for skipped), and before
that ``{"failed": [...], "checked": [...]}``; all are read.
"""
from __future__ import annotations


def gate_outcome(rec: dict) -> str:
    """A record's outcome; for records that predate outcomes, from ``passed``."""
    if rec.get("outcome"):
        return rec["outcome"]
    return {True: "pass", False: "fail"}.get(rec.get("passed"), "unverified")


def _records(report: dict) -> list[dict]:
    g = report.get("gates") or []
    return g if isinstance(g, list) else []


def failed_gates(report: dict) -> list[str]:
    """Detail lines of the gates a report failed."""
    g = report.get("gates") or []
    if isinstance(g, dict):
        return list(g.get("failed") or [])
    return [r["detail"] for r in g if gate_outcome(r) == "fail"]


def undecided_gates(report: dict) -> list[str]:
    """Detail lines of the gates that are inconclusive or unverified."""
    return [r["detail"] for r in _records(report)
            if gate_outcome(r) in ("inconclusive", "unverified")]


def checked_gates(report: dict) -> list[str]:
    """Detail lines of every gate check, whatever its outcome."""
    g = report.get("gates") or []
    if isinstance(g, dict):
        return list(g.get("checked") or [])
    return [r["detail"] for r in g]


def status_line(report: dict) -> str:
    """``status`` and why, in one line, for summaries and cards."""
    st = report.get("status") or "unknown"
    failed, undecided = failed_gates(report), undecided_gates(report)
    if st == "rejected":
        return f"rejected — failed gates: {'; '.join(failed)}"
    if st == "inconclusive":
        return f"inconclusive — undecided gates: {'; '.join(undecided)}"
    if st == "ungated":
        return "ungated — the probe suite has no gates; nothing was judged"
    if st == "accepted":
        return "accepted — every gate passed"
    return st
