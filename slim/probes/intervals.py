"""One-sided confidence bounds for the gates, and how much evidence would decide a gate.

Every function returns a two-sided interval at level ``2c − 1`` for confidence ``c``: each
end is then a one-sided ``c`` bound, so a gate can be decided on one end (pass) and the
other (fail) with the same confidence.

* Pass-rate retention on paired items (probes, binary lm-eval metrics): the score interval
  for a ratio of paired proportions (:func:`flip_retention_interval`), with half an item
  added to each cell so that a child that flips nothing on a handful of items is not
  thereby proven. Its size was checked by simulation at the floor (bench/gates.py
  ``--simulate``); the Bonferroni pair of exact bounds it replaces was valid but needed about
  twice the items to decide the same gate.
* Net new items (leaks the child added): an exact test on the discordant items (McNemar's
  conditioning): the share ``θ`` of them that are new leaks, Clopper–Pearson, mapped to
  ``n_d(2θ − 1)``.
* Means with a standard error (KLD, log PPL ratio): the normal interval ``mean ± z·se``.

A projection (``scale``) multiplies the observed counts, holding the observed rates, so
:func:`items_to_decide` can say how large a suite would settle an inconclusive gate.
"""
from __future__ import annotations

import math

from scipy.optimize import brentq
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


#: pseudo-count added to each of the four paired cells before the score test: keeps the
#: restricted MLE inside the simplex when a cell is empty (no flips seen on a few items is not
#: proof) and holds the test's size at the nominal level down to ~10 items (bench/gates.py
#: ``--simulate`` measures it)
CELL_PSEUDO_COUNT = 0.5


def paired_ratio_score(both: float, lost: float, gained: float, neither: float,
                       ratio: float) -> float:
    """Score statistic of H0: p_child / p_parent = *ratio* for paired binary outcomes.

    Cells: *both* passed, parent-only (*lost*), child-only (*gained*), *neither*. The
    statistic is (C − ratio·P) / √(n·V₀) with V₀ the variance of the per-item difference
    ``child − ratio·parent`` at the maximum-likelihood cell probabilities restricted to H0
    (Tang, Tang & Chan 2003, Stat. Med. 22:1373; Nam & Blackwelder 2002): the restricted MLE has
    the closed form p₁₁ = a/(n+μ(1−r)), p₁₀ = b/(n−μr), p₀₁ = c/(n+μ), p₀₀ = d/n with μ the
    root of one monotone equation (scipy.optimize.brentq). Each cell carries
    :data:`CELL_PSEUDO_COUNT`."""
    k = CELL_PSEUDO_COUNT
    a, b, c, d = both + k, lost + k, gained + k, neither + k
    n, r = a + b + c + d, float(ratio)
    P, C = a + b, a + c

    def g(mu: float) -> float:
        return (1 - r) * a / (n + mu * (1 - r)) - r * b / (n - mu * r) + c / (n + mu)

    # g falls from +∞ (μ → −n) to −∞ (μ → n/r): one root
    mu = brentq(g, -n * (1 - 1e-12), (n / r) * (1 - 1e-12), xtol=1e-12 * n, maxiter=500)
    p11, p10, p01 = a / (n + mu * (1 - r)), b / (n - mu * r), c / (n + mu)
    v0 = (1 - r) ** 2 * p11 + r * r * p10 + p01
    return (C - r * P) / math.sqrt(n * v0)


def flip_retention_interval(parent_passed: float, to_fail: float, parent_failed: float,
                            to_pass: float, confidence: float) -> tuple[float, float] | None:
    """Interval of retention = child passes / parent passes on the same items; None when the
    parent passed nothing (retention undefined).

    The ratio of two paired proportions, by inverting the score test of
    :func:`paired_ratio_score` over the ratio: the lower end is the ratio where the statistic
    equals z, the upper where it equals −z (each a one-sided bound at *confidence*). The items
    are a sample of a population of such items: the parent's passes are as random as the
    child's, and a floor ``r`` asks whether the child keeps ``r`` of what the parent does on
    that population."""
    if parent_passed <= 0:
        return None
    z = float(norm.ppf(1 - _alpha(confidence)))
    a, b, c = parent_passed - to_fail, to_fail, to_pass
    d = max(parent_failed - to_pass, 0.0)

    def at(r: float, target: float) -> float:
        return paired_ratio_score(a, b, c, d, r) - target

    hi_r = 2.0
    while at(hi_r, -z) > 0 and hi_r < 1e6:
        hi_r *= 2
    lo_r = 1e-9
    lo = 0.0 if at(lo_r, z) < 0 else brentq(lambda r: at(r, z), lo_r, hi_r, xtol=1e-9)
    hi = brentq(lambda r: at(r, -z), lo_r, hi_r, xtol=1e-9) if at(lo_r, -z) > 0 else 0.0
    # the pseudo-counts pull the interval toward 1: where they pull it past the observed
    # retention (e.g. a child that kept none of the parent's passes), widen it to include it,
    # which can only make a gate harder to decide, never easier
    observed = (parent_passed - to_fail + to_pass) / parent_passed
    return (min(lo, observed), max(hi, observed))


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
