"""bench/probe_difficulty.py draws the same level-stratified sample every time."""
import importlib.util
from collections import Counter

from slim.paths import ROOT
from slim.probes.suite import load_items


def _bench():
    spec = importlib.util.spec_from_file_location("probe_difficulty", ROOT / "bench" / "probe_difficulty.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sample_is_stratified_and_seeded():
    sample = _bench().sample
    items = load_items(["behavioral/arithmetic", "safety/harmful"])
    a = sample(items, 7, seed=0)
    assert a == sample(items, 7, seed=0)
    assert a != sample(items, 7, seed=1)
    groups = Counter((it["category"], it.get("level", "-")) for it in a)
    assert groups == {(cat, lv): 7 for cat in ("behavioral/arithmetic", "safety/harmful")
                      for lv in ("-", 1, 2, 3)}
    small = sample(items, 1000, seed=0)  # a group smaller than the cap is taken whole
    assert sorted(it["id"] for it in small) == sorted(it["id"] for it in items)
