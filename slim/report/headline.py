"""The one retention number a build is summarised by: registry, card, sweep, method=auto, CLI.

It is the mean retention over the *behavioral* categories only. Safety and leakage have
gates of their own, and their ratios sit on bases near 0 or 1: SmolLM2's parent leaked 7
of 12 canaries, so a child that leaked fewer scored canary retention 1.80 and lifted an
all-category mean above 1 for a build that lost a third of its arithmetic. A headline
that can rise because of noise in a leak count is not a capability number.
"""
from __future__ import annotations

import math

HEADLINE_FAMILY = "behavioral"
HEADLINE_LABEL = "behavioral retention"


def finite(v) -> float | None:
    """v as a float when it is a finite number (not a bool), else None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return None if math.isnan(v) or math.isinf(v) else float(v)


def category_retention(report: dict) -> dict[str, float | None]:
    """Category -> retention (child / parent), None where the parent scored 0."""
    cats = (((report.get("metrics") or {}).get("probes") or {}).get("categories") or {})
    return {c: finite((s or {}).get("retention")) for c, s in sorted(cats.items())
            if isinstance(s, dict)}


def headline_retention(report: dict) -> float | None:
    """Mean of the defined behavioral retentions, or None when there are none."""
    vals = [v for c, v in category_retention(report).items()
            if c.split("/", 1)[0] == HEADLINE_FAMILY and v is not None]
    return sum(vals) / len(vals) if vals else None
