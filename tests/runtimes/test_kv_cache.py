"""kv_cache=f16|q8_0|q4_0: the fit's KV term, the run parameters, and the fidelity step that
measures the child with that K/V cache type in llama.cpp beside f16 KV."""
from __future__ import annotations

import json

import pytest

from tests.conftest import TINY, compose


def test_fit_kv_term_follows_kv_cache():
    from slim.hardware.fit import fit_report, kv_cache_type
    from slim.planview import model_arch

    cfg = compose(["hardware=apple8gb", "kv_cache=q8_0"])
    arch = model_arch(cfg)
    hw = dict(cfg.hardware)
    assert kv_cache_type(cfg) == "q8_0"
    assert kv_cache_type(compose(["hardware=apple8gb"])) == "f16"
    assert kv_cache_type(compose(["hardware=edge4gb"])) == "q8_0"        # the tier's default
    assert kv_cache_type(compose(["hardware=edge4gb", "kv_cache=f16"])) == "f16"
    f16 = fit_report(hw, 10**8, arch, kv_dtype="f16")
    q8 = fit_report(hw, 10**8, arch, kv_dtype=kv_cache_type(cfg))
    q4 = fit_report(hw, 10**8, arch, kv_dtype="q4_0")
    assert q8["kv_cache_bytes"] / f16["kv_cache_bytes"] == pytest.approx(34 / 64)
    assert q4["kv_cache_bytes"] / f16["kv_cache_bytes"] == pytest.approx(18 / 64)
    assert "34/32 B" in q8["formula"] and q8["kv_cache_dtype"] == "q8_0"


def test_bad_kv_cache_refused_naming_the_key():
    from slim.config.validate import validate
    from slim.errors import ConfigErrors

    for bad, what in (("kv_cache=q5_1", "not one of"), ("kv_cache=fp8", "not one of")):
        with pytest.raises(ConfigErrors) as e:
            validate(compose(TINY + ["method=q4_k_m", bad]))
        assert [k for k, _ in e.value.errors] == ["kv_cache"] and what in str(e.value)
    with pytest.raises(ConfigErrors) as e:    # a compressed-tensors child is not run by llama.cpp
        validate(compose(TINY + ["method=gptq_w4", "hardware=h100_80gb", "kv_cache=q8_0"]))
    assert "kv_cache" in str(e.value) and "compressed-tensors" in str(e.value)
    validate(compose(TINY + ["method=gptq_w4", "hardware=h100_80gb", "kv_cache=f16"]))


def test_kv_type_in_the_measuring_step_key_only():
    from slim.executor import full_params
    from slim.plan import Planner

    f16 = Planner(compose(TINY + ["method=q4_k_m"])).build().steps
    q8 = Planner(compose(TINY + ["method=q4_k_m", "kv_cache=q8_0"])).build().steps
    assert "kv_cache" not in full_params(f16["fidelity:child"])      # keys as before the field
    assert full_params(q8["fidelity:child"])["kv_cache"] == "q8_0"
    for sid in f16:                        # nothing but the child's fidelity changes
        if sid != "fidelity:child":
            assert full_params(f16[sid]) == full_params(q8[sid]), sid


def test_child_measured_with_q8_0_kv_beside_f16(tmp_path):
    from slim.build import open_store
    from slim.executor import EventLog, Executor
    from slim.plan import Planner, ancestors

    cfg = compose(TINY + ["method=q4_k_m", "kv_cache=q8_0", "threads=1"])
    plan = Planner(cfg).build()
    want = ancestors(plan.steps, ["fidelity:child"])
    res = Executor(open_store(cfg), EventLog(None), threads=1).run(
        {k: plan.steps[k] for k in want})
    fid = json.loads((res["fidelity:child"].entry.data / "fidelity.json").read_text())
    kv = fid["kv_cache"]
    assert kv["type"] == "q8_0" and kv["flash_attn"] is True
    assert kv["vs_parent"]["tokens"] == kv["vs_f16_kv"]["tokens"] == fid["tokens"]
    # a q8_0 cache changes the logits (so it is really in use), far less than Q4_K_M weights do
    assert 0 < kv["vs_f16_kv"]["kld_mean"] < 0.2 * fid["kld_mean"]
    assert kv["vs_parent"]["kld_mean"] == pytest.approx(fid["kld_mean"], rel=0.2)


def test_run_parameters_in_modelfile_and_card():
    from slim.report.card import render_model_card, render_modelfile

    rep = {"build": "b", "target": {"method": "q4_k_m", "hardware": "edge4gb"},
           "parent": {"id": "p"}, "artifact": {"format": "gguf"},
           "metrics": {"fidelity": {"kld_mean": 0.03, "kv_cache": {
               "type": "q8_0", "vs_parent": {"kld_mean": 0.031}, "vs_f16_kv": {"kld_mean": 0.001}}}},
           "run": {"kv_cache": "q8_0", "kv_cache_from": "kv_cache", "flash_attn": True,
                   "context_length": 2048}}
    mf = render_modelfile(rep)
    assert "PARAMETER num_ctx 2048" in mf and "OLLAMA_KV_CACHE_TYPE=q8_0" in mf
    card = render_model_card(rep)
    assert "-ctk q8_0 -ctv q8_0 -fa on" in card and "q8_0 KV cache" in card and "0.03100" in card
