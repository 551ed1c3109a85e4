"""Every major family through the GGUF main job: convert -> imatrix -> Q4_K_M -> llama.cpp -> fidelity.

Each tiny model (conf/model/tiny_*.yaml) runs the real plan's steps up to the child's
fidelity, through the executor and the cache, so a broken converter module, a missing
imatrix name map or a tokenizer llama.cpp reads differently fails here with its cause.
"""
from __future__ import annotations

import math

import pytest

from tests.conftest import compose

FAMILIES = ["tiny_llama", "tiny_llama_untied", "tiny_mistral", "tiny_qwen2", "tiny_qwen3",
            "tiny_gemma2", "tiny_gemma3", "tiny_phi3", "tiny_qwen2_moe", "tiny_mixtral"]
MOE = {"tiny_qwen2_moe", "tiny_mixtral"}
TEXT = "The capital of France is Paris.\n  Two  spaces, digits 12345 and ünïcödé 🚀 end."


def _run_to_child_fidelity(model: str, *overrides: str):
    """The real plan's steps up to the child's fidelity, through the executor and the cache."""
    from slim.build import open_store
    from slim.executor import EventLog, Executor
    from slim.plan import Planner, ancestors

    cfg = compose([f"model={model}", "method=q4_k_m", "probes=quick", "calibration=small",
                   "threads=1", *overrides])
    plan = Planner(cfg).build()
    want = ancestors(plan.steps, ["fidelity:child"])
    ex = Executor(open_store(cfg), EventLog(None), threads=1)
    return ex.run({k: plan.steps[k] for k in want})


@pytest.mark.parametrize("model", FAMILIES)
def test_family_builds_q4_k_m_that_llama_cpp_loads_and_measures(model):
    import json

    import llama_cpp
    import numpy as np
    from transformers import AutoTokenizer

    from slim.models.gguf_header import read_gguf_header
    from slim.steps.quantize_gguf import gguf_stats

    res = _run_to_child_fidelity(model)
    parent_hf = res["import_parent"].entry.data
    child = res["quantize_gguf:0"].entry.data / "model.gguf"

    kv, tensors = read_gguf_header(child, keys=("general.architecture", "tokenizer.ggml.pre"))
    stats = gguf_stats(child)
    assert "Q4_K" in stats["tensor_types"], stats["tensor_types"]   # k-quants, not all fallbacks

    im_dir = res["imatrix:import_parent"].entry.data
    im = json.loads((im_dir / "imatrix.json").read_text())
    n_layers = compose([f"model={model}"]).model.arch.num_hidden_layers
    _, f16_tensors = read_gguf_header(res["convert_gguf:import_parent"].entry.data / "model.gguf")
    covered = set(np.load(im_dir / "imatrix.npz").files)
    # every block matrix the quantizer weights by the imatrix has an entry (routers stay F32)
    matrices = {t.name for t in f16_tensors if t.name.startswith("blk.") and len(t.shape) >= 2
                and "ffn_gate_inp" not in t.name}
    assert matrices - covered == set()
    if model in MOE:                                # llama-imatrix's per-expert *_exps entries
        assert im["expert_entries"] == 3 * n_layers
        assert any(t.name == "blk.0.ffn_down_exps.weight" for t in tensors)

    fid = json.loads((res["fidelity:child"].entry.data / "fidelity.json").read_text())
    assert fid["tokens"] > 0 and math.isfinite(fid["kld_mean"]) and 0 <= fid["kld_mean"] < 1.0

    # the GGUF's tokenizer splits text exactly as the parent's transformers tokenizer does
    tok = AutoTokenizer.from_pretrained(str(parent_hf))
    llm = llama_cpp.Llama(str(child), n_ctx=256, n_threads=1, verbose=False)
    try:
        assert llm.tokenize(TEXT.encode(), add_bos=False, special=False) == \
            tok.encode(TEXT, add_special_tokens=False), kv.get("tokenizer.ggml.pre")
        out = llm.create_completion("The capital of France is", max_tokens=4, temperature=0.0)
        assert out["usage"]["completion_tokens"] >= 1
    finally:
        llm.close()


def test_converter_modules_all_import():
    """Every architecture in the converter's map has a module that imports with our gguf-py."""
    from slim.toolchain import architecture_report

    rep = architecture_report()
    assert rep["failed_modules"] == {} and rep["importable"] == rep["total"] > 200, rep


@pytest.mark.parametrize("model", FAMILIES)
def test_plan_size_estimate_matches_the_built_family_gguf(model):
    """plan=true's size model (experts, fused qkv, tied heads) against the file llama.cpp wrote."""
    from slim.hardware.estimate import estimate_weights, gguf_storage
    from slim.models.gguf_header import read_gguf_header
    from slim.planview import model_arch

    res = _run_to_child_fidelity(model)   # cached by the test above
    _, tensors = read_gguf_header(res["quantize_gguf:0"].entry.data / "model.gguf")
    built = sum(t.n_bytes for t in tensors)
    est = estimate_weights(model_arch(compose([f"model={model}"])), gguf_storage("q4_k_m", True))
    assert est["bytes"] == pytest.approx(built, rel=0.03), (est["per_type"], built)


@pytest.mark.parametrize("model,published", [
    # llama.cpp Q4_K_M files as published (bartowski's GGUF repos; bytes as listed, GB = 1e9)
    ("qwen2_5_7b", 4.68e9), ("gemma2_9b", 5.76e9), ("mistral_7b", 4.37e9)])
def test_published_family_q4_k_m_sizes_within_3_percent(model, published):
    from slim.hardware.estimate import estimate_weights, gguf_storage
    from slim.planview import model_arch

    est = estimate_weights(model_arch(compose([f"model={model}"])), gguf_storage("q4_k_m"))
    assert est["bytes"] == pytest.approx(published, rel=0.03)


# Mixtral: GPTQ itself runs, but the compressed folder loaded back in float32 keeps the router
# (MixtralTopKRouter, not an nn.Linear) in float16 under compressed-tensors' offload wrapper,
# and the forward fails ("expected m1 and m2 to have the same dtype"); Qwen2-MoE's router loads.
LLMC_FAMILIES = [m if m != "tiny_mixtral" else pytest.param(m, marks=pytest.mark.xfail(
    strict=True, reason="compressed-tensors 0.19 leaves Mixtral's router float16 in a float32 "
                        "load")) for m in FAMILIES]


@pytest.mark.parametrize("model", LLMC_FAMILIES)
def test_family_through_llm_compressor_gptq(model):
    """GPTQ W4A16 (llm-compressor) on every family; the saved folder loads back and is measured."""
    import json

    res = _run_to_child_fidelity(model, "method=gptq_w4", "hardware=rtx4090_24gb")
    out = res["llmc_oneshot:0"].entry.data
    cfg = json.loads(next(out.rglob("config.json")).read_text())
    assert cfg["quantization_config"]["quant_method"] == "compressed-tensors"
    fid = json.loads((res["fidelity:child"].entry.data / "fidelity.json").read_text())
    assert fid["tokens"] > 0 and math.isfinite(fid["kld_mean"]) and 0 <= fid["kld_mean"] < 1.0
