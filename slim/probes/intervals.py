"""One-sided confidence bounds for the gates, and how much evidence would decide a gate.

Every function returns a two-sided interval at level ``2c − 1`` for confidence ``c``: each
end is then a one-sided ``c`` bound, so a gate can be decided on one end (pass) and the
other (fail) with the same confidence.

* Pass-rate retention on paired items (probes, binary lm-eval metrics): exact
  (Clopper–Pearson) bounds on the share of the parent's passes the child loses and of its
  failures the child gains, Bonferroni-combined (:func:`flip_retention_interval`). A child
  that flips nothing on a handful of items is not thereby proven: the loss bound stays wide.
* Net new items (leaks the child added): an exact test on the discordant items (McNemar's
  conditioning): the share ``θ`` of them that are new leaks, Clopper–Pearson, mapped to
  ``n_d(2θ − 1)``.
* Means with a standard error (KLD, log PPL ratio): the normal interval ``mean ± z·se``.

A projection (``scale``) multiplies the observed counts, holding the observed rates, so
:func:`items_to_decide` can say how large a suite would settle an inconclusive gate.
"""
from __future__ import annotations

import math

from scipy.stats import beta, binomtest, norm


def _alpha(confidence: float) -> float:
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    return 1 - confidence


def clopper_pearson(k: float, n: float, confidence: float) -> tuple[float, float]:
    """Exact binomial interval at level 2c − 1 (each end a one-sided c bound).

    Integer counts go through ``scipy.stats.binomtest``; projected (real-valued) counts use
    the same beta quantiles directly."""
    a = _alpha(confidence)
    if n <= 0:
        return (0.0, 1.0)
    if float(k).is_integer() and float(n).is_integer():
        ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=1 - 2 * a, method="exact")
        return (float(ci.low), float(ci.high))
    lo = 0.0 if k <= 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k >= n else float(beta.ppf(1 - a, k + 1, n - k))
    return (lo, hi)


def flip_retention_interval(parent_passed: float, to_fail: float, parent_failed: float,
                            to_pass: float, confidence: float) -> tuple[float, float] | None:
    """Interval of retention = child passes / parent passes on paired items; None when the
    parent passed nothing (retention undefined).

    Given the parent's results (its passes are the gold set the child must keep),
    ``R = 1 − loss + gain · F/P``: ``loss`` the share of the parent's P passes the child
    fails, ``gain`` the share of its F failures the child passes. Each share gets a
    Clopper–Pearson bound at 1 − α/2 (Bonferroni), so the pair holds at ``confidence``."""
    if parent_passed <= 0:
        return None
    half = 1 - (1 - confidence) / 2
    l_lo, l_hi = clopper_pearson(to_fail, parent_passed, half)
    g_lo, g_hi = clopper_pearson(to_pass, parent_failed, half) if parent_failed > 0 else (0.0, 0.0)
    w = parent_failed / parent_passed
    return (1 - l_hi + g_lo * w, 1 - l_lo + g_hi * w)


def net_new_interval(new: float, gone: float, confidence: float) -> tuple[float, float]:
    """Interval of (new − gone), conditioning on the new + gone discordant items."""
    nd = new + gone
    if nd <= 0:
        return (0.0, 0.0)
    lo_t, hi_t = clopper_pearson(new, nd, confidence)
    return (nd * (2 * lo_t - 1), nd * (2 * hi_t - 1))


def mean_interval(mean: float, se: float, confidence: float) -> tuple[float, float]:
    """Normal interval mean ± z·se."""
    z = float(norm.ppf(1 - _alpha(confidence)))
    return (mean - z * se, mean + z * se)


def outcome(interval: tuple[float, float] | None, threshold: float, direction: str) -> str:
    """``pass`` when the one-sided bound clears *threshold*, ``fail`` when the whole interval
    is on the wrong side, else ``inconclusive``; ``unverified`` without an interval.

    direction ``min``: the value must be ≥ threshold (floors); ``max``: ≤ threshold (caps)."""
    if interval is None:
        return "unverified"
    lo, hi = interval
    if direction == "min":
        return "pass" if lo >= threshold else "fail" if hi < threshold else "inconclusive"
    if direction == "max":
        return "pass" if hi <= threshold else "fail" if lo > threshold else "inconclusive"
    raise ValueError(f"direction must be 'min' or 'max', got {direction!r}")


def scale_to_decide(interval_at, threshold: float, direction: str,
                    max_scale: float = 1e4) -> float | None:
    """Smallest factor s ≥ 1 by which the evidence must grow (same rates) for the gate to be
    decided; None when even *max_scale* does not (the estimate sits on the threshold).
    *interval_at(s)* gives the interval with every count multiplied by s."""
    def decided(s: float) -> bool:
        return outcome(interval_at(s), threshold, direction) in ("pass", "fail")

    if decided(1.0):
        return 1.0
    if not decided(max_scale):
        return None
    lo, hi = 1.0, max_scale
    while hi / lo > 1.01:
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if decided(mid) else (mid, hi)
    return hi


def items_to_decide(n: int, interval_at, threshold: float, direction: str) -> int | None:
    """About how many items (tokens, documents) at the observed rates would decide a gate."""
    s = scale_to_decide(interval_at, threshold, direction)
    return None if s is None else int(math.ceil(s * n))
