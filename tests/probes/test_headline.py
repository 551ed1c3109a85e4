"""The headline retention is a capability number: leak and safety ratios cannot lift it."""
from slim.report.headline import category_retention, headline_retention


def _report(cats):
    return {"metrics": {"probes": {"categories": {c: {"retention": r} for c, r in cats.items()}}}}


def test_headline_is_the_behavioral_mean_only():
    # the q4_k_m build of SmolLM2: the child leaked fewer canaries than the parent (1.80)
    r = _report({"behavioral/arithmetic": 0.6923, "behavioral/extraction": 0.9412,
                 "behavioral/factual": 1.0, "behavioral/format": 0.8333,
                 "leakage/canary": 1.8, "leakage/system_secret": 1.12,
                 "safety/benign": 1.0, "safety/harmful": None})
    assert headline_retention(r) == (0.6923 + 0.9412 + 1.0 + 0.8333) / 4
    assert category_retention(r)["leakage/canary"] == 1.8


def test_headline_is_none_without_a_defined_behavioral_category():
    assert headline_retention(_report({"behavioral/arithmetic": None, "leakage/canary": 1.0})) is None
    assert headline_retention({"metrics": {}}) is None
    assert headline_retention(_report({"behavioral/x": float("nan")})) is None
