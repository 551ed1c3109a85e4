"""Quality gates decided by intervals, and the build status they add up to.

A gate's point estimate never decides it: each gate has an interval from its paired
statistic (:mod:`slim.probes.intervals`) at ``gates.confidence`` and an outcome:

* ``pass``: the one-sided bound clears the threshold;
* ``fail``: the interval lies wholly on the wrong side;
* ``inconclusive``: it straddles the threshold (the record says about how many items,
  tokens or documents at the observed rates would decide it);
* ``unverified``: nothing to judge (no items, parent scored 0, metric or task missing,
  a floor that matched no category).

Build status: ``accepted`` (every gate passes), ``rejected`` (any fails), ``inconclusive``
(none fails, at least one is inconclusive or unverified), ``ungated`` (no gates).
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import asdict, is_dataclass
from typing import Any, Mapping

from slim.errors import SlimError
from slim.probes.intervals import (clopper_pearson, flip_retention_interval, items_to_decide,
                                   mean_interval, net_new_interval, outcome)

GATES = ("retention_floor", "kld_max", "ppl_ratio_max", "leaks_max", "leaks_delta_max",
         "leak_rate_delta_max", "lm_eval_floor")
#: keys of ``probes.gates`` that are settings, not gates
SETTINGS = ("confidence",)
DEFAULT_CONFIDENCE = 0.95
OUTCOMES = ("pass", "fail", "inconclusive", "unverified")
STATUSES = ("accepted", "rejected", "inconclusive", "ungated")

HOW = {
    "rule": "pass: the one-sided bound at `confidence` clears the threshold; fail: the interval "
            "(two-sided at 2·confidence − 1, so each end is a one-sided bound) lies wholly on the "
            "wrong side; inconclusive: it straddles; unverified: nothing to judge",
    "retention_floor": "floor on retention = child passes / parent passes over the same items "
                       "(a ratio of paired proportions; the items a sample of such items): the "
                       "score interval that inverts the test of child rate = r × parent rate "
                       "(Tang, Tang & Chan 2003), half an item added to each of the four "
                       "paired cells; size at the floor checked by simulation "
                       "(bench/gates.py --simulate)",
    "lm_eval_floor": "retention of each lm-eval task/metric (child/parent, or parent/child where the "
                     "harness says lower is better): per-document 0/1 metrics as retention_floor; "
                     "other metrics by log-ratio ± z·√((se_p/p)² + (se_c/c)²) from the harness's "
                     "stderrs (parent and child treated as independent: conservative)",
    "kld_max": "cap on mean KLD(parent‖child) per token: mean ± z·stderr (normal; tokens within a "
               "window are correlated, as in llama-perplexity's own ±)",
    "ppl_ratio_max": "cap on PPL(child)/PPL(parent): exp(ln ratio ± z·stderr of the paired per-token "
                     "log-ratio)",
    "leaks_delta_max": "cap on net leaking items the child added (child-only minus parent-only, same "
                       "prompts): exact conditional interval on the discordant items",
    "leak_rate_delta_max": "cap on net leaking items the child added per probe item (child-only "
                           "minus parent-only, same prompts, ÷ items): exact conditional "
                           "interval on the discordant items, ÷ items; holds a larger suite "
                           "to a proportionally larger count",
    "leaks_max": "cap on the child's leaking items: Clopper–Pearson interval of its leak rate × items",
}


def gates_dict(gates: Any) -> dict:
    """A gates config (mapping, dataclass or DictConfig) as a plain dict; None is {}."""
    if gates is None:
        return {}
    if is_dataclass(gates) and not isinstance(gates, type):
        return asdict(gates)
    if isinstance(gates, Mapping):
        return dict(gates)
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(gates, DictConfig):
            return OmegaConf.to_container(gates, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover
        pass
    raise SlimError(f"probe gates must be a mapping, got {type(gates).__name__}", reason="invalid_config")


def confidence_problem(value: Any) -> str | None:
    """Why *value* cannot be ``gates.confidence``, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return f"must be a number in (0.5, 1), got {value!r}"
    if not 0.5 < value < 1:
        return f"must be in (0.5, 1) (a one-sided confidence level), got {value}"
    return None


def has_gates(gates: Any) -> bool:
    """True when any gate (not a setting) is configured."""
    g = gates_dict(gates)
    return any(g.get(k) is not None for k in GATES)


def build_status(records: list[dict]) -> str:
    """accepted | rejected | inconclusive | ungated from a report's gate records."""
    if not records:
        return "ungated"
    outs = [r.get("outcome") for r in records]
    if "fail" in outs:
        return "rejected"
    if all(o == "pass" for o in outs):
        return "accepted"
    return "inconclusive"


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return None if math.isnan(x) else float(x)


def _floor_for(cat: str, floors: Mapping[str, float]) -> tuple[str, float] | None:
    """Most specific floor for a category: an exact key, else the longest matching glob."""
    if cat in floors:
        return cat, floors[cat]
    matching = [p for p in floors if fnmatch.fnmatchcase(cat, p)]
    if not matching:
        return None
    best = max(matching, key=lambda p: (len(p.replace("*", "")), len(p)))
    return best, floors[best]


def _ids_note(label: str, ids: list[str]) -> str:
    return f" ({label}: {', '.join(ids[:10])}{' …' if len(ids) > 10 else ''})" if ids else ""


def _fmt_iv(iv) -> str:
    return "–" if iv is None else f"[{iv[0]:.4g}, {iv[1]:.4g}]"


class _Recorder:
    def __init__(self, confidence: float):
        self.confidence = confidence
        self.out: list[dict] = []

    def add(self, name: str, threshold: float, direction: str, value: float | None,
            interval_at=None, n: float | None = None, unit: str = "items", category: str | None = None,
            why: str = "", note: str = "") -> dict:
        """One gate record; *interval_at(scale)* gives the interval with the evidence scaled."""
        iv = interval_at(1.0) if interval_at is not None else None
        out = outcome(iv, threshold, direction)
        bound = None if iv is None else (iv[0] if direction == "min" else iv[1])
        need = None
        if out == "inconclusive" and n:
            need = items_to_decide(int(n), interval_at, threshold, direction)
        sym = "≥" if direction == "min" else "≤"
        label = f"{name} {category}" if category else name
        if out == "unverified":
            detail = f"{label}: unverified, {why} (threshold {threshold:g})"
        else:
            detail = (f"{label}: {out}, {why}; {100 * self.confidence:g}% bound {bound:.4g} vs "
                      f"{sym} {threshold:g}, interval {_fmt_iv(iv)}")
            if out == "inconclusive":
                detail += (f"; about {need} {unit} at the observed rates would decide it" if need
                           else f"; more {unit} would decide it (how many: the count is unknown)"
                           if not n else "; the estimate sits on the threshold: more evidence "
                                         "at the observed rates would not decide it")
        rec = {"name": name, "category": category, "threshold": threshold, "direction": direction,
               "value": value, "interval": None if iv is None else [iv[0], iv[1]],
               "bound": bound, "confidence": self.confidence, "outcome": out,
               "passed": {"pass": True, "fail": False}.get(out),
               "n": n, "unit": unit, "items_to_decide": need, "detail": detail + note}
        self.out.append(rec)
        return rec


def evaluate_gates(
    categories_scores: Mapping[str, dict],
    fidelity: Mapping[str, Any] | None,
    gates: Any,
    lm_eval: Mapping[str, Any] | None = None,
) -> list[dict]:
    """One record per gate check::

        {name, category, threshold, direction ("min" floor | "max" cap), value (point estimate),
         interval [lo, hi] | None, bound (the one-sided bound compared), confidence,
         outcome (pass | fail | inconclusive | unverified), passed (True | False | None),
         n, unit, items_to_decide (inconclusive only), detail}

    *gates* (mapping, dataclass or DictConfig; None values are "no gate"):
    ``retention_floor`` ({category-or-glob: floor}, or one number for "*"), ``kld_max``,
    ``ppl_ratio_max``, ``leaks_max``, ``leaks_delta_max``, ``leak_rate_delta_max``,
    ``lm_eval_floor`` and the setting
    ``confidence`` (default 0.95). *categories_scores* come from
    :func:`slim.probes.scoring.score_categories`, *lm_eval* from the report's lm-eval section
    (``{"task/metric": {parent, child, n, parent_passed, flips, parent_stderr, child_stderr,
    higher_is_better}}``).
    """
    g = gates_dict(gates)
    unknown = sorted(set(g) - set(GATES) - set(SETTINGS))
    if unknown:
        raise SlimError(f"unknown probe gate(s): {', '.join(unknown)}; known: {', '.join(GATES)}",
                        reason="invalid_config")
    conf = g.get("confidence")
    conf = DEFAULT_CONFIDENCE if conf is None else conf
    why = confidence_problem(conf)
    if why:
        raise SlimError(f"gate confidence {why}", reason="invalid_config")
    R = _Recorder(float(conf))
    for k in GATES[1:]:
        if g.get(k) is not None and _num(g[k]) is None:
            raise SlimError(f"gate {k} must be a number, got {g[k]!r}", reason="invalid_config")

    _retention_floors(R, categories_scores, g.get("retention_floor"))
    _fidelity_caps(R, fidelity, g)
    _leaks(R, categories_scores, g)
    if g.get("lm_eval_floor") is not None:
        _lm_eval(R, lm_eval, float(g["lm_eval_floor"]))
    return R.out


def check_gates(categories_scores, fidelity, gates, lm_eval=None) -> tuple[list[str], list[str]]:
    """``(failed, checked)`` detail lines of :func:`evaluate_gates`."""
    res = evaluate_gates(categories_scores, fidelity, gates, lm_eval)
    return [r["detail"] for r in res if r["outcome"] == "fail"], [r["detail"] for r in res]


def _flip_counts(s: Mapping) -> tuple[int, int, int] | None:
    """(both passed, flipped to fail, flipped to pass) of a category or lm-eval score."""
    fl = s.get("flips") or {}
    to_fail = s.get("flipped_to_fail", fl.get("to_fail"))
    to_pass = s.get("flipped_to_pass", fl.get("to_pass"))
    pp = s.get("parent_passed")
    if to_fail is None or to_pass is None or not isinstance(pp, int):
        return None
    return pp - len(to_fail), len(to_fail), len(to_pass)


def _flip_gate(R: _Recorder, name: str, cat: str, floor: float, s: Mapping, note: str,
               unit: str = "items") -> None:
    counts = _flip_counts(s)
    n = s.get("n") or 0
    if counts is None or not n:
        R.add(name, floor, "min", None, category=cat, why=f"no paired {unit}{note}")
        return
    a, b, c = counts
    if a + b == 0:
        R.add(name, floor, "min", None, category=cat,
              why=f"parent passed 0/{n}: retention undefined{note}")
        return
    value = (a + c) / (a + b)
    P, F = a + b, n - a - b
    R.add(name, floor, "min", value,
          lambda k: flip_retention_interval(k * P, k * b, k * F, k * c, R.confidence),
          n=n, unit=unit, category=cat,
          why=f"retention {value:.3f} (parent {a + b}/{n}, child {a + c}/{n}; {b} flipped to fail, "
              f"{c} to pass){note}")


def _retention_floors(R: _Recorder, scores: Mapping[str, dict], floors: Any) -> None:
    if floors is None:
        return
    if _num(floors) is not None:
        floors = {"*": float(floors)}
    if not isinstance(floors, Mapping):
        raise SlimError("gate retention_floor must map category (or glob) to a number",
                        reason="invalid_config")
    floors = dict(floors)
    for k, v in floors.items():
        if _num(v) is None:
            raise SlimError(f"gate retention_floor[{k!r}] must be a number, got {v!r}",
                            reason="invalid_config")
    used: set[str] = set()
    for cat in sorted(scores):
        hit = _floor_for(cat, floors)
        if hit is None:
            continue
        key, floor = hit
        used.add(key)
        _flip_gate(R, "retention_floor", cat, float(floor), scores[cat], f"; floor from `{key}`")
    for key in floors:
        if key not in used:
            R.add("retention_floor", float(floors[key]), "min", None, category=key,
                  why="no probe results matched this category" + (" pattern" if any(
                      ch in key for ch in "*?[") else ""))


def _fidelity_caps(R: _Recorder, fid: Mapping | None, g: dict) -> None:
    fid = fid or {}
    n = fid.get("tokens")
    limit = g.get("kld_max")
    if limit is not None:
        m, se = _num(fid.get("kld_mean")), _num(fid.get("kld_mean_stderr"))
        if m is None or se is None:
            R.add("kld_max", float(limit), "max", m,
                  why="no kld_mean ± stderr in the fidelity results (enable probes.fidelity)")
        else:
            R.add("kld_max", float(limit), "max", m,
                  lambda k: mean_interval(m, se / math.sqrt(k), R.confidence), n=n, unit="tokens",
                  why=f"mean KLD {m:.4g} ± {se:.2g} over {n} tokens")
    limit = g.get("ppl_ratio_max")
    if limit is not None:
        r, se = _num(fid.get("ppl_ratio")), _num(fid.get("ln_ppl_ratio_stderr"))
        if r is None or se is None or r <= 0 or limit <= 0:
            R.add("ppl_ratio_max", float(limit), "max", r,
                  why="no ppl_ratio with a log-ratio stderr in the fidelity results")
        else:
            def iv(k, r=r, se=se):
                lo, hi = mean_interval(math.log(r), se / math.sqrt(k), R.confidence)
                return (math.exp(lo), math.exp(hi))
            R.add("ppl_ratio_max", float(limit), "max", r, iv, n=n, unit="tokens",
                  why=f"PPL ratio {r:.4g} (ln ± {se:.2g}) over {n} tokens")


def _leaks(R: _Recorder, scores: Mapping[str, dict], g: dict) -> None:
    child = [i for s in scores.values() for i in s.get("leaks_child_ids") or []]
    parent = [i for s in scores.values() for i in s.get("leaks_parent_ids") or []]
    n = sum(int(s.get("n") or 0) for s in scores.values())
    parent_set, child_set = set(parent), set(child)
    new = [i for i in child if i not in parent_set]
    gone = [i for i in parent if i not in child_set]
    net = len(child) - len(parent)
    # leaks_delta_max: a count, held per this suite's size (a suite k times larger at the same
    # rates is held to k × limit); leak_rate_delta_max: the same net count per probe item
    for name, per in (("leaks_delta_max", 1), ("leak_rate_delta_max", n)):
        limit = g.get(name)
        if limit is None:
            continue
        if not n:
            R.add(name, float(limit), "max", None, why="no probe results")
            continue
        R.add(name, float(limit), "max", net / per,
              lambda k, per=per: tuple(x / (k * per) for x in net_new_interval(
                  k * len(new), k * len(gone), R.confidence)), n=n,
              why=f"child {len(child)} − parent {len(parent)} leaking items = {net:+d}"
                  + (f", per item {net / per:+.4f}" if per != 1 else "")
                  + f" ({len(new)} new, {len(gone)} gone)",
              note=_ids_note("new in child", new))
    limit = g.get("leaks_max")
    if limit is not None:
        if not n:
            R.add("leaks_max", float(limit), "max", None, why="no probe results")
        else:
            def iv(k, x=len(child)):
                lo, hi = clopper_pearson(k * x, k * n, R.confidence)
                return (lo * n, hi * n)
            R.add("leaks_max", float(limit), "max", len(child), iv, n=n,
                  why=f"{len(child)} child leaking item(s) of {n}", note=_ids_note("items", child))


def _lm_eval(R: _Recorder, lm_eval: Mapping[str, Any] | None, floor: float) -> None:
    if not lm_eval:
        R.add("lm_eval_floor", floor, "min", None, why="no lm-eval results")
        return
    for key in sorted(lm_eval):
        e = lm_eval[key]
        if not isinstance(e, Mapping):
            R.add("lm_eval_floor", floor, "min", None, category=key, why="unreadable result")
            continue
        p, c = _num(e.get("parent")), _num(e.get("child"))
        if p is None or c is None:
            R.add("lm_eval_floor", floor, "min", None, category=key,
                  why="the metric is missing on the parent or the child")
            continue
        higher = e.get("higher_is_better", True) is not False
        if _flip_counts(e) is not None and higher:
            _flip_gate(R, "lm_eval_floor", key, floor, e, "", unit="documents")
            continue
        num, den = (c, p) if higher else (p, c)
        se_num, se_den = ((e.get("child_stderr"), e.get("parent_stderr")) if higher
                          else (e.get("parent_stderr"), e.get("child_stderr")))
        se_num, se_den = _num(se_num), _num(se_den)
        sense = "child/parent" if higher else "parent/child (lower is better)"
        if den <= 0 or num <= 0:
            R.add("lm_eval_floor", floor, "min", None, category=key,
                  why=f"retention {sense} undefined (parent {p:.4g}, child {c:.4g})")
            continue
        value = num / den
        if se_num is None or se_den is None:
            R.add("lm_eval_floor", floor, "min", value, category=key,
                  why=f"retention {sense} {value:.3f} has no interval: the harness gave no stderr")
            continue
        se = math.sqrt((se_num / num) ** 2 + (se_den / den) ** 2)
        n = e.get("n") or None

        def iv(k, v=value, se=se):
            lo, hi = mean_interval(math.log(v), se / math.sqrt(k), R.confidence)
            return (math.exp(lo), math.exp(hi))
        R.add("lm_eval_floor", floor, "min", value, iv, n=n, unit="documents", category=key,
              why=f"retention {sense} {value:.3f} (parent {p:.4g} ± {se_den if higher else se_num:.2g}, "
                  f"child {c:.4g} ± {se_num if higher else se_den:.2g})")
