"""Reading a report's gate records (``report["gates"]``: one dict per check).

Kept apart from assembly so the card, registry, sweep and auto code read gates the same way
without importing the planner. Reports written before the list form kept
``{"failed": [...], "checked": [...]}``; both are read.
"""
from __future__ import annotations


def failed_gates(report: dict) -> list[str]:
    """Detail lines of the gates a report failed."""
    g = report.get("gates") or []
    if isinstance(g, dict):
        return list(g.get("failed") or [])
    return [r["detail"] for r in g if r.get("passed") is False]


def checked_gates(report: dict) -> list[str]:
    """Detail lines of every gate check, passed, failed or skipped."""
    g = report.get("gates") or []
    if isinstance(g, dict):
        return list(g.get("checked") or [])
    return [r["detail"] for r in g]
