"""Per-category scores of parent vs child probe results.

Scores are pass rates.  Each category gets a 95% Wilson score interval for the
parent's and the child's rate, a 95% paired-bootstrap interval for the delta
(child − parent) over the same items (seeded, so a report is reproducible), and
for the retention the interval the gates decide on: the exact conditional
interval from the flips (:func:`slim.probes.intervals.flip_retention_interval`).
The gates themselves are in :mod:`slim.probes.gates`.
"""
from __future__ import annotations

import math
import zlib

from slim.errors import SlimError
from slim.probes.intervals import flip_retention_interval

#: z for a two-sided 95% interval
Z95 = 1.959963984540054
#: bootstrap resamples for the delta interval
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 20240601


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when n == 0."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def paired_bootstrap_delta(
    parent: list[bool],
    child: list[bool],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(child) − mean(parent), resampling item pairs
    (numpy, seeded)."""
    import numpy as np

    n = len(parent)
    if n != len(child):
        raise ValueError("paired bootstrap needs equally long lists")
    if n == 0:
        return (0.0, 0.0)
    diffs = np.array([int(c) - int(p) for p, c in zip(parent, child)], dtype=np.int8)
    if (diffs == diffs[0]).all():
        return (float(diffs[0]), float(diffs[0]))
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for i in range(0, samples, 250):   # bounded memory for large suites
        k = min(250, samples - i)
        means[i:i + k] = diffs[rng.integers(0, n, size=(k, n))].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def flips(ids: list, parent: list[bool], child: list[bool]) -> dict[str, list]:
    """Items that passed on one side only: {"to_fail": parent-only, "to_pass": child-only}."""
    return {"to_fail": [i for i, p, c in zip(ids, parent, child) if p and not c],
            "to_pass": [i for i, p, c in zip(ids, parent, child) if c and not p]}


def _by_id(results: list[dict], side: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in results:
        if r["id"] in out:
            raise SlimError(f"{side} probe results contain id {r['id']!r} twice")
        out[r["id"]] = r
    return out


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(x, nd)


def score_categories(parent: list[dict], child: list[dict],
                     confidence: float = 0.95) -> dict[str, dict]:
    """Compare parent and child probe results (from :func:`slim.probes.suite.run_items`) per category.

    Items are paired by id; items present on one side only are left out and
    counted in ``unpaired`` (with a note).  For each category::

        {"n": int,                            # paired items
         "parent_passed": int, "child_passed": int,
         "parent_score": float, "child_score": float,      # pass rates
         "parent_ci": [lo, hi], "child_ci": [lo, hi],      # 95% Wilson
         "delta": float,                      # child_score - parent_score
         "delta_ci": [lo, hi],                # 95% paired bootstrap, seeded
         "retention": float | None,           # child/parent; None if parent_score == 0
         "retention_ci": [lo, hi] | None,     # exact conditional interval from the flips: each
                                              # end a one-sided *confidence* bound (the gates' interval)
         "flipped_to_fail": [ids], "flipped_to_pass": [ids],
         # the report's canonical names for the same numbers:
         "parent", "child" (scores), "ci_low", "ci_high" (retention_ci), "flips" (both lists),
         "leaks_parent": int, "leaks_child": int,          # leak hits (PII + secrets)
         "leaks_parent_ids": [ids], "leaks_child_ids": [ids],
         "unpaired": int,
         "notes": [str]}
    """
    p_by, c_by = _by_id(parent, "parent"), _by_id(child, "child")
    cats: dict[str, list[str]] = {}
    unpaired: dict[str, int] = {}
    for rid, r in p_by.items():
        if rid in c_by:
            cats.setdefault(r["category"], []).append(rid)
        else:
            unpaired[r["category"]] = unpaired.get(r["category"], 0) + 1
    for rid, r in c_by.items():
        if rid not in p_by:
            unpaired[r["category"]] = unpaired.get(r["category"], 0) + 1

    scores: dict[str, dict] = {}
    for cat in sorted(set(cats) | set(unpaired)):
        ids = cats.get(cat, [])
        n = len(ids)
        pp = [bool(p_by[i]["passed"]) for i in ids]
        cc = [bool(c_by[i]["passed"]) for i in ids]
        p_ok, c_ok = sum(pp), sum(cc)
        p_score = p_ok / n if n else 0.0
        c_score = c_ok / n if n else 0.0
        notes: list[str] = []
        if n == 0:
            retention = None
            notes.append("no items paired between parent and child; nothing to compare")
        elif p_ok == 0:
            retention = None
            notes.append(f"parent scored 0/{n}: retention (child/parent) is undefined")
        else:
            retention = c_score / p_score
        if unpaired.get(cat):
            notes.append(f"{unpaired[cat]} item(s) present in only one of parent/child results were left out")
        seed = BOOTSTRAP_SEED ^ zlib.crc32(cat.encode())
        d_lo, d_hi = paired_bootstrap_delta(pp, cc, seed=seed)
        to_fail = sum(1 for p, c in zip(pp, cc) if p and not c)
        to_pass = sum(1 for p, c in zip(pp, cc) if c and not p)
        r_ci = (flip_retention_interval(p_ok, to_fail, n - p_ok, to_pass, confidence)
                if retention is not None else None)
        leak_p = {i: len(p_by[i].get("leaks") or []) for i in ids}
        leak_c = {i: len(c_by[i].get("leaks") or []) for i in ids}
        scores[cat] = {
            "n": n,
            "parent_passed": p_ok,
            "child_passed": c_ok,
            "parent_score": _r(p_score),
            "child_score": _r(c_score),
            "parent_ci": [_r(x) for x in wilson_interval(p_ok, n)],
            "child_ci": [_r(x) for x in wilson_interval(c_ok, n)],
            "delta": _r(c_score - p_score),
            "delta_ci": [_r(d_lo), _r(d_hi)],
            "retention": _r(retention),
            "retention_ci": [_r(x) for x in r_ci] if r_ci else None,
            **{f"flipped_{k}": v for k, v in flips(ids, pp, cc).items()},
            "leaks_parent": sum(leak_p.values()),
            "leaks_child": sum(leak_c.values()),
            "leaks_parent_ids": [i for i in ids if leak_p[i]],
            "leaks_child_ids": [i for i in ids if leak_c[i]],
            "unpaired": unpaired.get(cat, 0),
            "notes": notes,
        }
        sc = scores[cat]
        sc.update({"parent": sc["parent_score"], "child": sc["child_score"],
                   "ci_low": sc["retention_ci"][0] if sc["retention_ci"] else None,
                   "ci_high": sc["retention_ci"][1] if sc["retention_ci"] else None,
                   "flips": {"to_fail": sc["flipped_to_fail"], "to_pass": sc["flipped_to_pass"]}})
    return scores
