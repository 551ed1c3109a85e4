"""The Pareto frontier of a sweep: smaller and better."""
from __future__ import annotations

import math

#: row keys a frontier is drawn for (y axis; size in MB is x)
QUALITY_KEYS = ("behavioral_retention", "one_minus_kld")


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


def frontiers(rows: list[dict]) -> dict[str, list[str]]:
    """Quality key -> members on its size-vs-quality frontier (rows with both numbers)."""
    out = {}
    for key in QUALITY_KEYS:
        idx = [i for i, r in enumerate(rows) if r.get("size_mb") is not None and r.get(key) is not None]
        if idx:
            front = pareto_front([(rows[i]["size_mb"], rows[i][key]) for i in idx])
            out[key] = [rows[idx[j]]["member"] for j in front]
    return out
