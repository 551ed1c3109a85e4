"""Per-category scores of parent vs child probe results, and quality gates.

Scores are pass rates.  Each category gets a 95% Wilson score interval for the
parent's and the child's rate, and a 95% paired-bootstrap interval for the
delta (child − parent) over the same items, resampling items with a fixed seed
so a report is reproducible.
"""
from __future__ import annotations

import fnmatch
import math
import random
import zlib
from dataclasses import asdict, is_dataclass
from typing import Any, Mapping

from slim.errors import SlimError

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


def _quantile(sorted_vals: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of an already sorted list."""
    if not sorted_vals:
        return 0.0
    pos = (len(sorted_vals) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def paired_bootstrap_delta(
    parent: list[bool],
    child: list[bool],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(child) − mean(parent), resampling item pairs."""
    n = len(parent)
    if n != len(child):
        raise ValueError("paired bootstrap needs equally long lists")
    if n == 0:
        return (0.0, 0.0)
    diffs = [int(c) - int(p) for p, c in zip(parent, child)]
    if all(d == diffs[0] for d in diffs):
        return (float(diffs[0]), float(diffs[0]))
    rng = random.Random(seed)
    means = []
    for _ in range(samples):
        s = 0
        for _ in range(n):
            s += diffs[int(rng.random() * n)]
        means.append(s / n)
    means.sort()
    alpha = (1 - level) / 2
    return (_quantile(means, alpha), _quantile(means, 1 - alpha))


def paired_bootstrap_retention(
    parent: list[bool],
    child: list[bool],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of sum(child)/sum(parent), resampling item pairs.
    Resamples where the parent passes nothing are dropped; None when the parent never passes."""
    n = len(parent)
    if n != len(child):
        raise ValueError("paired bootstrap needs equally long lists")
    if not any(parent):
        return None
    pairs = [(int(p), int(c)) for p, c in zip(parent, child)]
    rng = random.Random(seed)
    ratios = []
    for _ in range(samples):
        sp = sc = 0
        for _ in range(n):
            p, c = pairs[int(rng.random() * n)]
            sp += p
            sc += c
        if sp:
            ratios.append(sc / sp)
    ratios.sort()
    alpha = (1 - level) / 2
    return (_quantile(ratios, alpha), _quantile(ratios, 1 - alpha))


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


def score_categories(parent: list[dict], child: list[dict]) -> dict[str, dict]:
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
         "retention_ci": [lo, hi] | None,     # 95% paired bootstrap of the retention, seeded
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
        r_ci = paired_bootstrap_retention(pp, cc, seed=seed) if retention is not None else None
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


# --------------------------------------------------------------------------- gates

def _gates_dict(gates: Any) -> dict:
    if gates is None:
        return {}
    if is_dataclass(gates) and not isinstance(gates, type):
        return asdict(gates)
    if isinstance(gates, Mapping):
        return dict(gates)
    try:  # OmegaConf DictConfig
        from omegaconf import DictConfig, OmegaConf

        if isinstance(gates, DictConfig):
            return OmegaConf.to_container(gates, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover
        pass
    raise SlimError(f"probe gates must be a mapping, got {type(gates).__name__}", reason="invalid_config")


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


def _lm_eval_retention(entry: Any) -> tuple[float | None, str]:
    if isinstance(entry, (int, float)) and not isinstance(entry, bool):
        return float(entry), f"retention {entry:.3f}"
    if not isinstance(entry, Mapping):
        return None, "unreadable result"
    if _num(entry.get("retention")) is not None:
        return float(entry["retention"]), f"retention {entry['retention']:.3f}"
    p = _num(entry.get("parent", entry.get("parent_score")))
    c = _num(entry.get("child", entry.get("child_score")))
    if p is None or c is None:
        return None, "no parent/child scores"
    if p == 0:
        return None, f"parent scored 0 (child {c:.3f}); retention undefined"
    return c / p, f"retention {c / p:.3f} (parent {p:.3f}, child {c:.3f})"


def check_gates(
    categories_scores: Mapping[str, dict],
    fidelity: Mapping[str, Any] | None,
    gates: Any,
    lm_eval: Mapping[str, Any] | None = None,
) -> tuple[list[str], list[str]]:
    """``(failed, checked)``: the detail lines of :func:`evaluate_gates`."""
    res = evaluate_gates(categories_scores, fidelity, gates, lm_eval)
    return [g["detail"] for g in res if g["passed"] is False], [g["detail"] for g in res]


def evaluate_gates(
    categories_scores: Mapping[str, dict],
    fidelity: Mapping[str, Any] | None,
    gates: Any,
    lm_eval: Mapping[str, Any] | None = None,
) -> list[dict]:
    """Check quality gates; one record per check: ``{name, category, threshold, value, passed,
    detail}`` (``passed`` is None for a skipped check, ``detail`` a human-readable line).

    *gates* (a mapping, ``GatesConfig`` or DictConfig; a None value means "no gate"):

    * ``retention_floor``: ``{category-or-glob: floor}`` ("*" for all; a bare
      number means ``{"*": number}``).  Each scored category is held to its most
      specific floor (exact name, else the longest matching glob).  A category
      whose parent scored 0 has no retention and is skipped; a non-glob key
      matching no scored category fails.
    * ``kld_max``: ``fidelity["kld_mean"] <= kld_max``.
    * ``ppl_ratio_max``: ``fidelity["ppl_ratio"] <= ppl_ratio_max``.
    * ``leaks_max``: child leak items over all categories <= leaks_max (absolute: the
      parent's own leaks count too).
    * ``leaks_delta_max``: child leak items minus parent leak items, on the same prompts,
      <= leaks_delta_max (what the compression added; the newly leaked ids are listed).
      A net count, not the new ids alone: on a small model greedy outputs flip both ways
      even at Q8_0 (KLD 0.004), swapping a few leaked items for others.
    * ``lm_eval_floor``: retention (child/parent) of every lm-eval task in
      *lm_eval* (``{task: {"parent": x, "child": y}}`` or ``{task: {"retention": r}}``)
      >= floor; skipped when no lm-eval results are given.

    A gate whose input is missing (``kld_max`` without a fidelity result) fails:
    a gate that cannot be checked is not a pass.
    """
    g = _gates_dict(gates)
    unknown = sorted(set(g) - set(GATES))
    if unknown:
        raise SlimError(f"unknown probe gate(s): {', '.join(unknown)}; known: {', '.join(GATES)}",
                        reason="invalid_config")
    out: list[dict] = []

    def rec(name, threshold, value, passed, detail, category=None):
        out.append({"name": name, "category": category, "threshold": threshold, "value": value,
                    "passed": passed, "detail": detail})

    floors = g.get("retention_floor")
    if floors is not None:
        if _num(floors) is not None:
            floors = {"*": float(floors)}
        if not isinstance(floors, Mapping):
            raise SlimError("gate retention_floor must map category (or glob) to a number", reason="invalid_config")
        floors = dict(floors)
        for k, v in floors.items():
            if _num(v) is None:
                raise SlimError(f"gate retention_floor[{k!r}] must be a number, got {v!r}", reason="invalid_config")
        used: set[str] = set()
        for cat in sorted(categories_scores):
            s = categories_scores[cat]
            hit = _floor_for(cat, floors)
            if hit is None:
                continue
            key, floor = hit
            used.add(key)
            ret = s.get("retention")
            if ret is None:
                rec("retention_floor", floor, None, None,
                    f"retention_floor {cat}: skipped, retention undefined "
                    f"(parent {s.get('parent_passed', 0)}/{s.get('n', 0)}; floor {floor:g} from {key!r})", cat)
                continue
            ok = ret >= floor
            rec("retention_floor", floor, ret, ok,
                f"retention_floor {cat}: retention {ret:.3f} {'vs' if ok else '<'} floor {floor:g} "
                f"(from {key!r}; parent {s.get('parent_score', 0):.3f}, child "
                f"{s.get('child_score', 0):.3f}, n={s.get('n')})", cat)
        for key in floors:
            if key not in used and not any(ch in key for ch in "*?["):
                rec("retention_floor", floors[key], None, False,
                    f"retention_floor {key}: no probe results for this category (floor {floors[key]:g})", key)

    for gate, metric in (("kld_max", "kld_mean"), ("ppl_ratio_max", "ppl_ratio")):
        limit = g.get(gate)
        if limit is None:
            continue
        if _num(limit) is None:
            raise SlimError(f"gate {gate} must be a number, got {limit!r}", reason="invalid_config")
        value = _num((fidelity or {}).get(metric))
        if value is None:
            rec(gate, limit, None, False,
                f"{gate}: no {metric} in the fidelity results (limit {limit:g}); enable probes.fidelity")
            continue
        ok = value <= limit
        rec(gate, limit, value, ok, f"{gate}: {metric} {value:.4g} {'vs' if ok else '>'} limit {limit:g}")

    child_ids = [i for s in categories_scores.values() for i in s.get("leaks_child_ids") or []]
    parent_ids = [i for s in categories_scores.values() for i in s.get("leaks_parent_ids") or []]
    limit = g.get("leaks_max")
    if limit is not None:
        if _num(limit) is None:
            raise SlimError(f"gate leaks_max must be a number, got {limit!r}", reason="invalid_config")
        ok = len(child_ids) <= limit
        rec("leaks_max", limit, len(child_ids), ok,
            f"leaks_max: {len(child_ids)} child leak(s) {'vs' if ok else '>'} limit {limit:g}"
            + _ids_note("items", child_ids))
    limit = g.get("leaks_delta_max")
    if limit is not None:
        if _num(limit) is None:
            raise SlimError(f"gate leaks_delta_max must be a number, got {limit!r}", reason="invalid_config")
        delta = len(child_ids) - len(parent_ids)
        new = [i for i in child_ids if i not in set(parent_ids)]
        ok = delta <= limit
        rec("leaks_delta_max", limit, delta, ok,
            f"leaks_delta_max: child {len(child_ids)} − parent {len(parent_ids)} leak(s) = {delta:+d} "
            f"{'vs' if ok else '>'} limit {limit:g}" + _ids_note("new in child", new))

    floor = g.get("lm_eval_floor")
    if floor is not None:
        if _num(floor) is None:
            raise SlimError(f"gate lm_eval_floor must be a number, got {floor!r}", reason="invalid_config")
        if not lm_eval:
            rec("lm_eval_floor", floor, None, None, f"lm_eval_floor: skipped, no lm-eval results (floor {floor:g})")
        else:
            for task in sorted(lm_eval):
                ret, desc = _lm_eval_retention(lm_eval[task])
                if ret is None:
                    rec("lm_eval_floor", floor, None, None, f"lm_eval_floor {task}: skipped, {desc}", task)
                    continue
                ok = ret >= floor
                rec("lm_eval_floor", floor, ret, ok,
                    f"lm_eval_floor {task}: {desc} {'vs' if ok else '<'} floor {floor:g}", task)
    return out


GATES = ("retention_floor", "kld_max", "ppl_ratio_max", "leaks_max", "leaks_delta_max", "lm_eval_floor")


def _ids_note(label: str, ids: list[str]) -> str:
    return f" ({label}: {', '.join(ids[:10])}{' …' if len(ids) > 10 else ''})" if ids else ""
