"""probes.gates.confidence and probes.data are checked with the rest of the config, by key,
before any work."""
from __future__ import annotations

import json

import pytest

from slim.config.validate import validate
from slim.errors import ConfigErrors
from tests.conftest import TINY, compose


def errors(overrides, **set_gates):
    cfg = compose(TINY + ["method=q8_0"] + overrides)
    for k, v in set_gates.items():
        cfg.probes.gates[k] = v
    with pytest.raises(ConfigErrors) as e:
        validate(cfg)
    return dict(e.value.errors)


def test_confidence_out_of_range():
    assert "(0.5, 1)" in errors(["probes.gates.confidence=1.0"])["probes.gates.confidence"]
    assert "(0.5, 1)" in errors(["probes.gates.confidence=0.4"])["probes.gates.confidence"]
    validate(compose(TINY + ["method=q8_0", "probes.gates.confidence=0.99"]))


def test_gate_value_checked_before_work():
    e = errors([], retention_floor={"*": "high"})
    assert "must be a number" in e["probes.gates"]


def test_probe_data_not_a_directory(tmp_path):
    e = errors([f"probes.data={tmp_path / 'nope'}"])
    assert "not a directory" in e["probes.data"]
    (tmp_path / "empty").mkdir()
    assert "no probe files" in errors([f"probes.data={tmp_path / 'empty'}"])["probes.data"]


def test_probe_data_duplicate_id_names_both_places(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    item = {"id": "factual-capital-france", "category": "mine/x",
            "messages": [{"role": "user", "content": "hi"}], "check": {"type": "not_refused"}}
    (d / "a.jsonl").write_text(json.dumps(item) + "\n")
    e = errors([f"probes.data={d}"])["probes.data"]
    assert f"{d / 'a.jsonl'}:1: duplicate id 'factual-capital-france'" in e and "behavioral.jsonl" in e


def test_user_categories_run_beside_the_shipped_ones(tmp_path):
    from slim.evaluation import probe_categories
    d = tmp_path / "mine"
    d.mkdir()
    item = {"id": "u1", "category": "mine/x", "messages": [{"role": "user", "content": "hi"}],
            "check": {"type": "not_refused"}}
    (d / "a.jsonl").write_text(json.dumps(item) + "\n")
    cfg = compose(TINY + ["method=q8_0", f"probes.data={d}"])
    validate(cfg)
    assert probe_categories(cfg.probes) == ["behavioral/*", "safety/*", "leakage/*", "mine/x"]
    cfg = compose(TINY + ["method=q8_0", f"probes.data={d}", "probes.categories=[]"])
    assert probe_categories(cfg.probes) == ["mine/x"]
