"""Gates decided by intervals: the outcome rule, each gate's statistic, and build status."""
import math
import random

import pytest
from scipy.stats import binomtest, norm

from slim.errors import SlimError
from slim.probes.gates import build_status, check_gates, evaluate_gates
from slim.probes.intervals import (clopper_pearson, flip_retention_interval, net_new_interval,
                                   paired_ratio_score,
                                   outcome)
from slim.probes.scoring import score_categories


def cat(n, both, to_fail, to_pass, leaks_parent=(), leaks_child=()):
    """A category score as score_categories writes it, from flip counts."""
    parent_passed = both + to_fail
    child_passed = both + to_pass
    return {"n": n, "parent_passed": parent_passed, "child_passed": child_passed,
            "parent_score": parent_passed / n, "child_score": child_passed / n,
            "retention": child_passed / parent_passed if parent_passed else None,
            "flipped_to_fail": [f"f{i}" for i in range(to_fail)],
            "flipped_to_pass": [f"p{i}" for i in range(to_pass)],
            "leaks_parent_ids": list(leaks_parent), "leaks_child_ids": list(leaks_child)}


def one(records, name, category=None):
    [r] = [r for r in records if r["name"] == name and r["category"] == category]
    return r


def test_issue_example_is_inconclusive_not_rejected():
    """make run's arithmetic: 30 items, parent 13, 6 flipped to fail, 1 to pass. Retention
    0.615 < 0.8 rejected the build under `ret >= floor`; its interval contains the floor."""
    r = one(evaluate_gates({"behavioral/arithmetic": cat(30, 7, 6, 1)}, None,
                           {"retention_floor": {"*": 0.8}}), "retention_floor", "behavioral/arithmetic")
    assert r["value"] == pytest.approx(8 / 13)
    assert r["outcome"] == "inconclusive" and r["passed"] is None
    lo, hi = r["interval"]
    assert lo < 0.8 < hi
    assert r["items_to_decide"] > 30 and "items at the observed rates would decide it" in r["detail"]
    # a suite as large as the projection says, at the same rates, decides it: rejected
    k = math.ceil(r["items_to_decide"] / 30) + 1
    rk = one(evaluate_gates({"a/b": cat(30 * k, 7 * k, 6 * k, 1 * k)}, None, {"retention_floor": 0.8}),
             "retention_floor", "a/b")
    assert rk["outcome"] == "fail" and rk["interval"][1] < 0.8
    k = math.floor(r["items_to_decide"] / 30 * 0.8)
    rk = one(evaluate_gates({"a/b": cat(30 * k, 7 * k, 6 * k, 1 * k)}, None, {"retention_floor": 0.8}),
             "retention_floor", "a/b")
    assert rk["outcome"] == "inconclusive"


def test_point_estimate_above_floor_is_not_a_pass_without_evidence():
    """Retention 0.9 ≥ 0.8 passed under the old rule; on 10 items with 1 loss it proves nothing."""
    r = one(evaluate_gates({"a/b": cat(10, 9, 1, 0)}, None, {"retention_floor": 0.8}),
            "retention_floor", "a/b")
    assert r["value"] == pytest.approx(0.9) and r["outcome"] == "inconclusive"
    big = one(evaluate_gates({"a/b": cat(400, 360, 4, 0)}, None, {"retention_floor": 0.8}),
              "retention_floor", "a/b")
    assert big["outcome"] == "pass" and big["bound"] >= 0.8


def test_outcome_agrees_with_interval_over_random_counts():
    rng = random.Random(7)
    seen = set()
    for _ in range(400):
        both, tf, tp = rng.randrange(0, 60), rng.randrange(0, 20), rng.randrange(0, 20)
        n = both + tf + tp + rng.randrange(0, 30) + 1
        floor = rng.choice([0.5, 0.8, 0.9, 1.0])
        conf = rng.choice([0.9, 0.95, 0.99])
        r = one(evaluate_gates({"a/b": cat(n, both, tf, tp)}, None,
                               {"retention_floor": floor, "confidence": conf}), "retention_floor", "a/b")
        seen.add(r["outcome"])
        if r["outcome"] == "pass":
            assert r["bound"] >= floor and r["bound"] == r["interval"][0]
        elif r["outcome"] == "fail":
            assert r["interval"][1] < floor
        elif r["outcome"] == "inconclusive":
            assert r["interval"][0] < floor <= r["interval"][1]
        else:
            assert both + tf == 0 and r["interval"] is None
        if r["interval"]:
            assert r["interval"][0] <= r["value"] + 1e-12 <= r["interval"][1] + 2e-12
    assert seen == {"pass", "fail", "inconclusive", "unverified"}


def test_clopper_pearson_is_scipy_exact_and_projection_matches():
    for k, n in [(0, 5), (3, 7), (7, 7), (13, 30)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=0.9, method="exact")
        assert clopper_pearson(k, n, 0.95) == pytest.approx((ci.low, ci.high))
        # the real-valued path (used to project larger suites) gives the same numbers
        assert clopper_pearson(k + 1e-12, n, 0.95) == pytest.approx((ci.low, ci.high), abs=1e-6)


def test_flip_interval_edges():
    assert flip_retention_interval(0, 0, 3, 1, 0.95) is None       # parent passed nothing
    # identical outputs on a few items prove little; on many, retention near 1
    lo, hi = flip_retention_interval(10, 0, 0, 0, 0.95)
    assert lo < 0.8 < 1.0 < hi
    assert flip_retention_interval(300, 0, 0, 0, 0.95)[0] > 0.98
    lo, hi = flip_retention_interval(10, 5, 0, 0, 0.95)
    assert lo < 0.5 < hi < 1.0
    # gains on the parent's failures raise the upper end above 1
    assert flip_retention_interval(10, 0, 10, 2, 0.95)[1] > 1.2
    # the interval inverts the score test: its lower end is where the statistic is z
    lo, hi = flip_retention_interval(58, 11, 92, 7, 0.95)
    assert paired_ratio_score(47, 11, 7, 85, lo) == pytest.approx(norm.ppf(0.95), abs=1e-6)
    assert paired_ratio_score(47, 11, 7, 85, hi) == pytest.approx(-norm.ppf(0.95), abs=1e-6)
    assert lo < 54 / 58 < hi
    # a child that kept nothing: the interval still contains the observed 0
    lo, hi = flip_retention_interval(12, 12, 3, 0, 0.95)
    assert lo == 0.0 < hi < 0.5


@pytest.mark.parametrize("n,pp,q0", [(30, 0.4, 0.05), (150, 0.4, 0.0), (150, 0.9, 0.2), (150, 0.1, 0.05)])
def test_retention_floor_size_at_the_floor(n, pp, q0):
    """A child whose true retention is exactly the floor passes it at most ~5% of the time
    (the score test's size; seeded simulation, 2000 suites, bench/gates.py's simulator)."""
    import importlib.util

    from slim.paths import ROOT
    spec = importlib.util.spec_from_file_location("bench_gates", ROOT / "bench" / "gates.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rng, floor, reps = random.Random(n), 0.8, 2000
    q1 = (floor * pp - (1 - pp) * q0) / pp        # child pass rate on the parent's passes
    passes = sum(bench.passes_floor(bench.paired_suite(rng, n, pp, q1, q0), floor, norm.ppf(0.95))
                 for _ in range(reps))
    assert passes / reps <= 0.065


    assert net_new_interval(0, 0, 0.95) == (0.0, 0.0)
    lo, hi = net_new_interval(8, 0, 0.95)
    assert 0 < lo < hi == pytest.approx(8.0)


def test_outcome_rule_directions():
    assert outcome((0.85, 0.95), 0.8, "min") == "pass"
    assert outcome((0.5, 0.79), 0.8, "min") == "fail"
    assert outcome((0.7, 0.9), 0.8, "min") == "inconclusive"
    assert outcome((0.01, 0.04), 0.05, "max") == "pass"
    assert outcome((0.06, 0.09), 0.05, "max") == "fail"
    assert outcome((0.04, 0.06), 0.05, "max") == "inconclusive"
    assert outcome(None, 0.05, "max") == "unverified"


def test_kld_and_ppl_caps_by_their_interval():
    fid = {"kld_mean": 0.09, "kld_mean_stderr": 0.01, "ppl_ratio": 1.05,
           "ln_ppl_ratio_stderr": 0.01, "tokens": 1000}
    res = evaluate_gates({}, fid, {"kld_max": 0.1, "ppl_ratio_max": 1.2})
    k, p = one(res, "kld_max"), one(res, "ppl_ratio_max")
    # 0.09 ≤ 0.1 passed under `value <= limit`; 0.09 + 1.645·0.01 > 0.1 decides nothing
    assert k["outcome"] == "inconclusive" and k["bound"] == pytest.approx(0.09 + 1.6449 * 0.01, abs=1e-4)
    assert k["unit"] == "tokens" and k["items_to_decide"] == pytest.approx(1000 * (1.6449 / 1) ** 2, rel=0.02)
    assert p["outcome"] == "pass" and p["bound"] == pytest.approx(1.05 * math.exp(1.6449 * 0.01), rel=1e-4)
    res = evaluate_gates({}, dict(fid, kld_mean=0.2), {"kld_max": 0.1})
    assert one(res, "kld_max")["outcome"] == "fail"
    # no stderr, or no fidelity at all: nothing to judge
    assert one(evaluate_gates({}, {"kld_mean": 0.01}, {"kld_max": 0.1}), "kld_max")["outcome"] == "unverified"
    assert one(evaluate_gates({}, None, {"ppl_ratio_max": 1.1}), "ppl_ratio_max")["outcome"] == "unverified"


def test_unverified_when_nothing_to_judge():
    res = evaluate_gates({"safety/harmful": cat(10, 0, 0, 2)}, None,
                         {"retention_floor": {"*": 0.8, "leakage/*": 0.9, "behavioral/x": 0.8}})
    assert {(r["category"], r["outcome"]) for r in res} == {
        ("safety/harmful", "unverified"), ("leakage/*", "unverified"), ("behavioral/x", "unverified")}
    assert "parent passed 0/10" in one(res, "retention_floor", "safety/harmful")["detail"]
    assert build_status(res) == "inconclusive"
    # probes.categories=[] with a "*" floor: no evidence is not a pass
    assert build_status(evaluate_gates({}, None, {"retention_floor": 0.8})) == "inconclusive"
    assert one(evaluate_gates({}, None, {"lm_eval_floor": 0.9}), "lm_eval_floor")["outcome"] == "unverified"


def test_leak_gates():
    cats = {"leakage/x": cat(40, 30, 0, 0, leaks_parent=["a", "b"], leaks_child=["a", "c"]),
            "leakage/y": cat(40, 30, 0, 0, leaks_child=[f"n{i}" for i in range(9)])}
    res = evaluate_gates(cats, None, {"leaks_delta_max": 0, "leaks_max": 30})
    d = one(res, "leaks_delta_max")
    assert d["value"] == 9 and d["outcome"] == "fail" and d["interval"][0] > 0
    assert "new in child: c, n0" in d["detail"]
    assert one(res, "leaks_max")["outcome"] == "pass"
    # leaks that merely swap items are no evidence the compression added any
    swapped = {"leakage/x": cat(40, 30, 0, 0, leaks_parent=["a", "b"], leaks_child=["a", "c"])}
    s = one(evaluate_gates(swapped, None, {"leaks_delta_max": 2}), "leaks_delta_max")
    assert s["value"] == 0 and s["outcome"] == "pass"
    # many swaps: undecided on this suite, decided by a larger one at the same rates
    many = {"leakage/x": cat(300, 200, 0, 0, leaks_parent=[f"p{i}" for i in range(12)],
                             leaks_child=[f"c{i}" for i in range(12)])}
    m = one(evaluate_gates(many, None, {"leaks_delta_max": 2}), "leaks_delta_max")
    assert m["outcome"] == "inconclusive" and m["items_to_decide"] > 300
    same = {"leakage/x": cat(40, 30, 0, 0, leaks_parent=["a"], leaks_child=["a"])}
    assert one(evaluate_gates(same, None, {"leaks_delta_max": 0}), "leaks_delta_max")["outcome"] == "pass"


def test_lm_eval_lower_is_better_and_binary_documents():
    le = {"wiki/word_perplexity": {"parent": 20.0, "child": 30.0, "higher_is_better": False,
                                   "parent_stderr": 0.1, "child_stderr": 0.1, "n": 50},
          "facts/acc": {"parent": 0.5, "child": 0.5, "higher_is_better": True, "n": 200,
                        "parent_passed": 100, "flips": {"to_fail": ["d1"], "to_pass": ["d2"]}}}
    res = evaluate_gates({}, None, {"lm_eval_floor": 0.9}, lm_eval=le)
    w = one(res, "lm_eval_floor", "wiki/word_perplexity")
    # perplexity rose 50%: retention parent/child = 0.667, a loss (child/parent said 1.5)
    assert w["value"] == pytest.approx(20 / 30) and w["outcome"] == "fail"
    assert "lower is better" in w["detail"]
    a = one(res, "lm_eval_floor", "facts/acc")
    assert a["outcome"] == "pass" and a["unit"] == "documents"
    le["wiki/word_perplexity"].update(parent_stderr=None)
    assert one(evaluate_gates({}, None, {"lm_eval_floor": 0.9}, lm_eval=le), "lm_eval_floor",
               "wiki/word_perplexity")["outcome"] == "unverified"


def test_build_status():
    assert build_status([]) == "ungated"
    assert build_status([{"outcome": "pass"}] * 3) == "accepted"
    assert build_status([{"outcome": "pass"}, {"outcome": "inconclusive"}]) == "inconclusive"
    assert build_status([{"outcome": "pass"}, {"outcome": "unverified"}]) == "inconclusive"
    assert build_status([{"outcome": "inconclusive"}, {"outcome": "fail"}]) == "rejected"
    assert evaluate_gates({}, None, {"retention_floor": None, "kld_max": None}) == []


def test_config_errors():
    with pytest.raises(SlimError, match="unknown probe gate"):
        evaluate_gates({}, None, {"kld_maxx": 1})
    with pytest.raises(SlimError, match="must be a number"):
        evaluate_gates({}, None, {"retention_floor": {"*": "high"}})
    with pytest.raises(SlimError, match="confidence"):
        evaluate_gates({}, None, {"kld_max": 0.1, "confidence": 1.5})
    failed, checked = check_gates({"a/b": cat(400, 200, 150, 0)}, None, {"retention_floor": 0.8})
    assert len(failed) == 1 and failed[0].startswith("retention_floor a/b: fail")


def test_score_categories_interval_is_the_gate_interval():
    P = [{"id": str(i), "category": "a/b", "passed": i % 2 == 0} for i in range(40)]
    C = [{"id": str(i), "category": "a/b", "passed": i % 4 == 0} for i in range(40)]
    s = score_categories(P, C)["a/b"]
    r = one(evaluate_gates({"a/b": s}, None, {"retention_floor": 0.8}), "retention_floor", "a/b")
    assert [s["ci_low"], s["ci_high"]] == [pytest.approx(x, abs=1e-4) for x in r["interval"]]
    # 10 of the parent's 20 passes lost, nothing gained: retention 0.5, wholly below 0.8
    assert r["outcome"] == "fail" and r["interval"][0] < 0.5 < r["interval"][1] < 0.8
