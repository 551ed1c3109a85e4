import math

import pytest

from slim.errors import SlimError
from slim.probes.scoring import check_gates, paired_bootstrap_delta, score_categories, wilson_interval


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


def scores(**retentions):
    out = {}
    for cat, (ret, leaks) in retentions.items():
        out[cat.replace("__", "/")] = {
            "n": 10, "parent_passed": 0 if ret is None else 8, "parent_score": 0.0 if ret is None else 0.8,
            "child_score": 0.0 if ret is None else 0.8 * ret, "retention": ret,
            "leaks_child": leaks, "leaks_child_ids": [f"id{i}" for i in range(leaks)],
        }
    return out


def test_gates_pass():
    sc = scores(behavioral__arithmetic=(0.95, 0), behavioral__format=(0.9, 0), safety__harmful=(None, 0))
    failed, checked = check_gates(
        sc, {"kld_mean": 0.02, "ppl_ratio": 1.03},
        {"retention_floor": {"*": 0.85, "behavioral/arithmetic": 0.9}, "kld_max": 0.05,
         "ppl_ratio_max": 1.1, "leaks_max": 0, "lm_eval_floor": None},
    )
    assert failed == []
    assert any("behavioral/arithmetic" in c and "'behavioral/arithmetic'" in c for c in checked)
    assert any("safety/harmful: skipped" in c for c in checked)
    assert any(c.startswith("kld_max") for c in checked)
    assert any(c.startswith("leaks_max: 0") for c in checked)


def test_gates_fail_with_readable_reasons():
    sc = scores(behavioral__arithmetic=(0.7, 0), behavioral__format=(0.9, 0), leakage__canary=(1.0, 3))
    failed, checked = check_gates(
        sc, {"kld_mean": 0.2, "ppl_ratio": 1.5},
        {"retention_floor": {"behavioral/*": 0.8, "safety/benign": 0.9}, "kld_max": 0.1,
         "ppl_ratio_max": 1.2, "leaks_max": 1},
    )
    text = "\n".join(failed)
    assert "retention_floor behavioral/arithmetic: retention 0.700 < floor 0.8" in text
    assert "behavioral/format" not in text
    assert "retention_floor safety/benign: no probe results" in text
    assert "kld_max: kld_mean 0.2 > limit 0.1" in text
    assert "ppl_ratio_max: ppl_ratio 1.5 > limit 1.2" in text
    assert "leaks_max: 3 child leak(s) > limit 1" in text and "id0" in text
    assert len(failed) == 5
    assert len(checked) >= len(failed)


def test_gates_missing_inputs_and_lm_eval():
    failed, checked = check_gates({}, None, {"kld_max": 0.1})
    assert failed and "no kld_mean" in failed[0]
    failed, checked = check_gates({}, {"kld_mean": math.nan}, {"kld_max": 0.1})
    assert failed
    failed, checked = check_gates({}, None, {"lm_eval_floor": 0.9})
    assert failed == [] and "skipped" in checked[0]
    failed, checked = check_gates(
        {}, None, {"lm_eval_floor": 0.9},
        lm_eval={"hellaswag": {"parent": 0.5, "child": 0.4}, "arc": {"parent": 0.4, "child": 0.39}},
    )
    assert len(failed) == 1 and failed[0].startswith("lm_eval_floor hellaswag: retention 0.800")
    failed, _ = check_gates({}, None, {"lm_eval_floor": 0.9}, lm_eval={"hellaswag": {"retention": 0.8}, "arc": 0.975})
    assert len(failed) == 1 and failed[0].startswith("lm_eval_floor hellaswag: retention 0.800")
    failed, checked = check_gates({}, None, {"lm_eval_floor": 0.9}, lm_eval={"t": {"parent": 0.0, "child": 0.1}})
    assert failed == [] and "undefined" in checked[0]


def test_gates_accept_dataclass_and_reject_unknown():
    from dataclasses import dataclass

    @dataclass
    class G:
        retention_floor: dict | None = None
        kld_max: float | None = None
        ppl_ratio_max: float | None = None
        leaks_max: int | None = None
        lm_eval_floor: float | None = None

    assert check_gates(scores(a__b=(0.5, 0)), None, G(retention_floor={"*": 0.6}))[0]
    assert check_gates(scores(a__b=(0.5, 0)), None, {"retention_floor": 0.4}) == (
        [], ["retention_floor a/b: retention 0.500 vs floor 0.4 (from '*'; parent 0.800, child 0.400, n=10)"])
    assert check_gates({}, None, None) == ([], [])
    with pytest.raises(SlimError, match="unknown probe gate"):
        check_gates({}, None, {"kld_maxx": 1})
    with pytest.raises(SlimError, match="must be a number"):
        check_gates({}, None, {"retention_floor": {"*": "high"}})


def test_leaks_delta_gate_is_child_minus_parent_and_names_new_leaks():
    from slim.probes.scoring import evaluate_gates
    cats = {"leakage/x": {"leaks_parent_ids": ["a", "b"], "leaks_child_ids": ["a", "c"],
                          "retention": 1.0, "n": 3},
            "leakage/y": {"leaks_parent_ids": [], "leaks_child_ids": ["d"], "retention": 1.0, "n": 3}}
    res = evaluate_gates(cats, None, {"leaks_delta_max": 0, "leaks_max": 5})
    by = {g["name"]: g for g in res}
    assert by["leaks_delta_max"]["value"] == 1 and by["leaks_delta_max"]["passed"] is False
    assert "new in child: c, d" in by["leaks_delta_max"]["detail"]
    assert by["leaks_max"]["value"] == 3 and by["leaks_max"]["passed"] is True
    swapped = {"leakage/x": {"leaks_parent_ids": ["a", "b"], "leaks_child_ids": ["a", "c"]}}
    assert evaluate_gates(swapped, None, {"leaks_delta_max": 0})[0]["passed"] is True
    assert set(by["leaks_max"]) == {"name", "category", "threshold", "value", "passed", "detail"}


def test_gate_records_mark_skips_and_failures():
    from slim.probes.scoring import evaluate_gates
    cats = {"a/b": {"retention": None, "n": 4, "parent_passed": 0},
            "a/c": {"retention": 0.5, "n": 4, "parent_score": 0.5, "child_score": 0.25}}
    res = evaluate_gates(cats, {"kld_mean": 0.2}, {"retention_floor": {"*": 0.8}, "kld_max": 0.1})
    got = {(g["name"], g["category"]): g["passed"] for g in res}
    assert got == {("retention_floor", "a/b"): None, ("retention_floor", "a/c"): False,
                   ("kld_max", None): False}


def test_retention_interval_brackets_the_point_estimate():
    P = [{"id": str(i), "category": "a/b", "passed": i % 2 == 0} for i in range(40)]
    C = [{"id": str(i), "category": "a/b", "passed": i % 4 == 0} for i in range(40)]
    s = score_categories(P, C)["a/b"]
    assert s["retention"] == 0.5 and s["ci_low"] < 0.5 < s["ci_high"] <= 1.0
    assert (s["parent"], s["child"]) == (0.5, 0.25) and len(s["flips"]["to_fail"]) == 10
    none = score_categories([{"id": "1", "category": "a/b", "passed": False}],
                            [{"id": "1", "category": "a/b", "passed": True}])["a/b"]
    assert none["retention"] is None and none["ci_low"] is None
