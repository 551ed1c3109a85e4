"""Each method builds on the tiny model; its artifact loads in plain transformers and generates.

The stage tests run only the steps an artifact depends on (parent, calibration, the method's
own step); ``test_full_build_*`` run whole builds with evaluation, signing and the report.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import TINY, compose
from tests.methods.conftest import build_stages, generate

#: method -> overrides that keep CPU time small in tests (the YAML defaults are for real models)
FAST = {
    "awq_w4": ["method.stages.0.params.n_grid=3", "method.stages.0.params.max_samples=8"],
    "autoround_w4": ["method.stages.0.params.iters=2", "method.stages.0.params.max_samples=8"],
}
QUANTIZED = {"gptq_w4": "I32", "awq_w4": "I32", "autoround_w4": "I32", "fp8_dynamic": "F8_E4M3",
             "w8a8_smoothquant": "I8"}
PRUNED = {"wanda50": "0:0", "sparsegpt50": "0:0", "sparsegpt_2of4": "2:4", "magnitude50": "0:0"}


def _compress_json(plan, resolved):
    return json.loads((resolved[plan.artifact.step].entry.data / "compress.json").read_text())


def _no_fp32(folder):
    from slim.models.safetensors_folder import tensors
    for f in folder.glob("*.safetensors"):
        for k, v in tensors(f)[1].items():
            assert v["dtype"] != "F32", (f.name, k)


@pytest.mark.slow
@pytest.mark.parametrize("method", list(QUANTIZED) + list(PRUNED))
def test_method_builds_loads_and_generates(method):
    art, plan, resolved = build_stages(method, FAST.get(method, []))
    info = _compress_json(plan, resolved)
    cfg = json.loads((art / "config.json").read_text())
    assert cfg["dtype"] in ("float16", "bfloat16")
    _no_fp32(art)
    assert info["n_params"] > 0 and info["bpw"] > 0 and info["tensor_types"]
    if method in QUANTIZED:
        assert plan.artifact.format == "compressed-tensors"
        q = cfg["quantization_config"]
        assert q["quant_method"] == "compressed-tensors" and q["quantization_status"] == "compressed"
        assert QUANTIZED[method] in info["tensor_types"]
        assert info["engine"] == ("auto-round" if method == "autoround_w4"
                                  else "llm-compressor oneshot")
        assert "lm_head" in info["ignored_layers"]
        if info.get("group_sizes"):
            assert set(info["group_sizes"].values()) == {128}  # tiny: 256/512 wide
    else:
        assert plan.artifact.format == "hf" and "quantization_config" not in cfg
        sp = info["sparsity"]
        assert abs(sp["linear_weights"] - 0.5) < 0.01
        if PRUNED[method] == "2:4":
            assert sp["follows_mask"] is True
        st = sp["storage"]
        assert st["chosen"] == "dense" and st["reason"]
        assert st["bitmask_bytes_estimate"] < st["dense_bytes"]
    if method == "awq_w4":
        assert any("llmc_cpu" in w for w in info["workarounds"])
    assert isinstance(generate(art), str)


NARROW = ["model.arch.hidden_size=192", "model.arch.intermediate_size=384"]


@pytest.mark.slow
@pytest.mark.parametrize("method,policy", [("gptq_w4", "fallback"), ("gptq_w4", "ignore"),
                                           ("awq_w4", "fallback"), ("autoround_w4", "fallback")])
def test_group_size_per_layer_on_192_wide_model(method, policy):
    """hidden 192: 192 % 128 != 0 -> g64 (fallback) or 16-bit (ignore); MLP down (384) keeps 128."""
    extra = NARROW + FAST.get(method, []) + [f"method.stages.0.params.indivisible={policy}"]
    if policy == "ignore":  # round-to-nearest is enough to check the layout, and quick
        extra.append("method.stages.0.params.algorithm=rtn")
    art, plan, resolved = build_stages(method, extra)
    info = _compress_json(plan, resolved)
    q = json.loads((art / "config.json").read_text())["quantization_config"]
    sizes = {g["weights"]["group_size"] for g in q["config_groups"].values()}
    if policy == "fallback":
        assert info["group_sizes"]["model.layers.*.mlp.down_proj"] == 128
        assert info["group_sizes"]["model.layers.*.self_attn.q_proj"] == 64
        assert sizes == {128, 64}
        assert set(info["ignored_layers"]) == {"lm_head"}
    else:
        assert set(info["group_sizes"]) == {"model.layers.*.mlp.down_proj"} and sizes == {128}
        why = info["ignored_layers"]["model.layers.0.self_attn.q_proj"]
        assert "192" in why and "16-bit" in why
        assert "model.layers.1.mlp.up_proj" in q["ignore"]
    generate(art)


def test_quantized_artifact_cannot_feed_another_stage():
    from slim.errors import SlimError
    from slim.plan import Artifact
    from slim.steps import llmc_oneshot, quantize_gguf
    ct = Artifact("llmc_oneshot:0", "compressed-tensors", "model")
    with pytest.raises(SlimError, match="16-bit HF model"):
        quantize_gguf.plan_stage(None, ct, {"type": "Q4_K_M"}, 1)
    with pytest.raises(SlimError, match="cannot be quantized or pruned again"):
        llmc_oneshot.plan_stage(None, ct, {"algorithm": "gptq", "scheme": "W4A16"}, 1)


def _keys(method):
    from slim.build import open_store
    from slim.executor import EventLog, Executor
    from slim.plan import Planner
    cfg = compose(TINY + [f"method={method}", "hardware=h100_80gb"])
    plan = Planner(cfg).build()
    return {r.step.id: r.key for r in Executor(open_store(cfg), EventLog(None)).resolve(plan.steps)}


@pytest.mark.parametrize("single,composed", [("wanda50", "wanda50_q4_k_m"),
                                             ("sparsegpt50", "sparsegpt50_q4_k_m")])
def test_compositions_share_the_prune_step(single, composed):
    a, b = _keys(single), _keys(composed)
    assert a["llmc_oneshot:0"] == b["llmc_oneshot:0"]
    assert b["imatrix:llmc_oneshot:0"] and b["convert_gguf:llmc_oneshot:0"]
    assert _keys("wanda50")["llmc_oneshot:0"] != _keys("sparsegpt50")["llmc_oneshot:0"]


def test_fp8_on_apple8gb_fails_before_any_work(tmp_path):
    env_cache, builds = tmp_path / "cache", tmp_path / "builds"
    import os
    env = dict(os.environ, SLIM_CACHE_DIR=str(env_cache))
    p = subprocess.run([sys.executable, "-m", "slim", "method=fp8_dynamic", "hardware=apple8gb",
                        f"paths.builds={builds}"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode != 0
    err = p.stderr
    assert "Traceback" not in err
    assert "fp8_dynamic" in err and "apple8gb" in err and "fp8" in err
    assert "methods this tier runs:" in err and "q4_k_m" in err and "wanda50" in err
    assert not env_cache.exists() and not builds.exists()


@pytest.mark.slow
def test_full_build_wanda50_q4_k_m_reuses_wanda50(tmp_path):
    from slim.build import run_build
    build_stages("wanda50")  # the single-stage method's prune step, now cached
    cfg = compose(TINY + ["method=wanda50_q4_k_m", "hardware=rtx3060_12gb",
                          f"paths.builds={tmp_path}", "probes.categories=[]"])
    out = run_build(cfg, quiet=True)
    r = json.loads((out / "report.json").read_text())
    steps = {s["id"]: s for s in r["steps"]}
    assert steps["llmc_oneshot:0"]["cached"] is True
    assert steps["quantize_gguf:1"]["cached"] is False
    assert r["artifact"]["format"] == "gguf" and "Q4_K" in r["artifact"]["tensor_types"]
    assert r["metrics"]["fidelity"]["kld_mean"] >= 0
    code = ("from llama_cpp import Llama; import sys\n"
            f"m = Llama({str(out / 'model.gguf')!r}, n_ctx=64, verbose=False)\n"
            "o = m('The capital of France is', max_tokens=6, temperature=0)\n"
            "assert o['usage']['completion_tokens'] > 0; print(o['choices'][0]['text'])")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]


@pytest.mark.slow
def test_full_build_gptq_w4_report(tmp_path):
    from slim.build import run_build
    cfg = compose(TINY + ["method=gptq_w4", "hardware=rtx3060_12gb", f"paths.builds={tmp_path}"])
    out = run_build(cfg, quiet=True)
    r = json.loads((out / "report.json").read_text())
    a = r["artifact"]
    assert a["format"] == "compressed-tensors" and a["engine"] == "llm-compressor oneshot"
    assert a["group_sizes"] and a["recipe"][0]["GPTQModifier"] and "lm_head" in a["ignored_layers"]
    assert a["bytes"] == sum(f["bytes"] for f in a["files"].values())
    assert a["bytes"] < sum(p.stat().st_size for p in (out / "model").rglob("*")) + 1
    f = r["metrics"]["fidelity"]
    assert f["runtime"] == "transformers" if "runtime" in f else True
    assert f["kld_mean"] >= 0 and r["metrics"].get("probes")
    generate(out / "model")
