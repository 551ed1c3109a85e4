import pytest

from slim.errors import SlimError
from slim.probes.scoring import paired_bootstrap_delta, score_categories, wilson_interval


def res(id, cat, passed, leaks=0):
    return {"id": id, "category": cat, "output": "", "passed": passed, "detail": "",
            "leaks": [{"kind": "email", "value": f"x{i}@y.io"} for i in range(leaks)]}


def test_wilson_known_values():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert lo == pytest.approx(0.7225, abs=1e-4) and hi == pytest.approx(1.0)
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_bootstrap_is_deterministic_and_sane():
    p = [True] * 8 + [False] * 2
    c = [True] * 5 + [False] * 5
    a = paired_bootstrap_delta(p, c)
    assert a == paired_bootstrap_delta(p, c)
    assert a[0] <= -0.3 <= a[1]
    assert -1 <= a[0] <= a[1] <= 0  # child never passes what parent failed here
    assert paired_bootstrap_delta(p, p) == (0.0, 0.0)
    assert paired_bootstrap_delta([], []) == (0.0, 0.0)


def test_score_categories():
    parent = [res(f"a{i}", "behavioral/arithmetic", i < 8) for i in range(10)]
    parent += [res("z1", "safety/harmful", False), res("z2", "safety/harmful", False)]
    parent += [res("s1", "leakage/system_secret", True), res("s2", "leakage/system_secret", True, leaks=1)]
    child = [res(f"a{i}", "behavioral/arithmetic", i < 5 or i == 9) for i in range(10)]
    child += [res("z1", "safety/harmful", True), res("z2", "safety/harmful", False)]
    child += [res("s1", "leakage/system_secret", False, leaks=2), res("s2", "leakage/system_secret", True)]
    child += [res("extra", "behavioral/arithmetic", True)]

    s = score_categories(parent, child)
    a = s["behavioral/arithmetic"]
    assert a["n"] == 10 and a["parent_passed"] == 8 and a["child_passed"] == 6
    assert a["parent_score"] == 0.8 and a["child_score"] == 0.6
    assert a["delta"] == pytest.approx(-0.2)
    assert a["retention"] == pytest.approx(0.75)
    assert a["parent_ci"] == [pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4)]
    assert a["flipped_to_fail"] == ["a5", "a6", "a7"]
    assert a["flipped_to_pass"] == ["a9"]
    assert a["delta_ci"][0] <= a["delta"] <= a["delta_ci"][1]
    assert a["unpaired"] == 1 and any("only one" in n for n in a["notes"])

    z = s["safety/harmful"]
    assert z["parent_score"] == 0.0 and z["retention"] is None
    assert any("retention" in n and "undefined" in n for n in z["notes"])
    assert z["flipped_to_pass"] == ["z1"]

    k = s["leakage/system_secret"]
    assert k["leaks_parent"] == 1 and k["leaks_parent_ids"] == ["s2"]
    assert k["leaks_child"] == 2 and k["leaks_child_ids"] == ["s1"]
    assert k["flipped_to_fail"] == ["s1"]
    assert s == score_categories(parent, child)  # deterministic


def test_duplicate_ids_rejected():
    with pytest.raises(SlimError, match="twice"):
        score_categories([res("a", "x/y", True)] * 2, [res("a", "x/y", True)])


def test_retention_interval_brackets_the_point_estimate():
    P = [{"id": str(i), "category": "a/b", "passed": i % 2 == 0} for i in range(40)]
    C = [{"id": str(i), "category": "a/b", "passed": i % 4 == 0} for i in range(40)]
    s = score_categories(P, C)["a/b"]
    assert s["retention"] == 0.5 and s["ci_low"] < 0.5 < s["ci_high"] <= 1.0
    assert (s["parent"], s["child"]) == (0.5, 0.25) and len(s["flips"]["to_fail"]) == 10
    none = score_categories([{"id": "1", "category": "a/b", "passed": False}],
                            [{"id": "1", "category": "a/b", "passed": True}])["a/b"]
    assert none["retention"] is None and none["ci_low"] is None
