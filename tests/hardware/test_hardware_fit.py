"""Fit arithmetic, KV cache, decode bound and size estimates."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from slim.config import catalog
from slim.errors import SlimError
from slim.hardware import (arch_from_gguf, arch_from_hf_config, decode_estimate, estimate_weights,
                           fit_report, gguf_tensor_types, kv_cache_bytes, param_shapes, usable_bytes)
from slim.hardware.deployed import deployed
from slim.hardware.estimate import DENSE, compressed_tensors_storage, gguf_storage

ROOT = Path(__file__).resolve().parents[2]
GIB = 1 << 30

SMOL = {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
        "tie_word_embeddings": True, "max_position_embeddings": 8192}

HW = {"name": "t8", "backend": "metal", "memory_gb": 8, "usable_fraction": 0.667, "reserve_gb": 0.0,
      "bandwidth_gbs": 100, "context_length": 8192, "kv_cache_dtype": "f16",
      "runtime_overhead_gb": 0.5}


def arch_of(stem):
    return OmegaConf.to_container(OmegaConf.load(ROOT / "conf/model" / f"{stem}.yaml").arch)


def method_bytes(arch, name: str) -> int:
    """Estimated bytes of a shipped method, from what its stages declare."""
    return estimate_weights(*deployed(catalog.load("method", name), arch))["bytes"]


def test_usable_bytes():
    assert usable_bytes(HW) == int(8 * GIB * 0.667)
    assert usable_bytes({**HW, "usable_fraction": 1.0, "reserve_gb": 1.5}) == int(6.5 * GIB)


def test_kv_cache_smollm2():
    assert kv_cache_bytes(SMOL, 8192, "f16") == 30 * 3 * 64 * 8192 * 2 * 2
    assert kv_cache_bytes(SMOL, 8192, "f32") == 30 * 3 * 64 * 8192 * 2 * 4
    assert kv_cache_bytes(SMOL, 8192, "q8_0") == 30 * 3 * 64 * 8192 * 2 * 34 // 32
    assert kv_cache_bytes(SMOL, 8192, "q4_0") == 30 * 3 * 64 * 8192 * 2 * 18 // 32
    with pytest.raises(SlimError, match="kv_cache_dtype"):
        kv_cache_bytes(SMOL, 8192, "q3")


def test_kv_defaults_heads():
    a = {k: v for k, v in SMOL.items() if k != "num_key_value_heads"}
    assert kv_cache_bytes(a, 100, "f16") == 30 * 9 * 64 * 100 * 2 * 2


def test_fit_report_arithmetic():
    w = 104_800_000
    r = fit_report(HW, w, SMOL)
    kv = 30 * 3 * 64 * 8192 * 2 * 2
    assert r["kv_cache_bytes"] == kv and r["context_length"] == 8192
    assert r["overhead_bytes"] == GIB // 2
    assert r["total_bytes"] == w + kv + GIB // 2
    assert r["usable_bytes"] == usable_bytes(HW)
    assert r["fits"] is True
    assert r["headroom_bytes"] == r["usable_bytes"] - r["total_bytes"]
    assert r["headroom_fraction"] == pytest.approx(r["headroom_bytes"] / r["usable_bytes"])
    assert r["kv_cache_dtype"] == "f16"
    assert r["bytes_per_token"] == w + kv
    f = r["formula"]
    for piece in ("30 layers", "3 kv heads", "64 dim", "8192 ctx", "×2×2 B", "180.0 MiB",
                  "512.0 MiB", "≤", "8 GiB × 0.667", "5.34 GiB"):
        assert piece in f, (piece, f)


def test_fit_report_does_not_fit_and_headroom():
    small = {**HW, "memory_gb": 1.0, "usable_fraction": 1.0}
    r = fit_report(small, 600 * 2**20, SMOL)
    assert not r["fits"] and r["headroom_bytes"] < 0 and ">" in r["formula"]
    # fits without headroom, not with 50%
    r0 = fit_report(HW, 3 * GIB, SMOL, context_length=1024)
    r1 = fit_report(HW, 3 * GIB, SMOL, context_length=1024, headroom=0.5)
    assert r0["fits"] and not r1["fits"] and "headroom" in r1["formula"]


def test_context_capped_by_model():
    r = fit_report({**HW, "context_length": 32768}, 1, SMOL)
    assert r["context_length"] == 8192 and r["context_limited_by_model"]
    r = fit_report({**HW, "context_length": 32768}, 1, SMOL, context_length=16384)
    assert r["context_length"] == 16384


def test_decode_estimate():
    d = decode_estimate(HW, 500_000_000)
    assert d["tokens_per_s_upper_bound"] == pytest.approx(200.0)
    assert d["bandwidth_gbs"] == 100 and d["bytes_per_token"] == 500_000_000
    assert "upper bound" in d["note"]


def test_param_shapes_count_matches_smollm2():
    shapes = param_shapes(SMOL)
    n = sum(r * c for _, r, c in shapes)
    assert n == 134_515_008  # SmolLM2-135M parameter count (tied embeddings)
    assert not any(name == "output.weight" for name, _, _ in shapes)
    untied = param_shapes({**SMOL, "tie_word_embeddings": False})
    assert untied[-1] == ("output.weight", 49152, 576)


def test_estimate_llama_8b_70b_q4_k_m():
    e8 = estimate_weights(arch_of("llama3_8b"), gguf_storage("q4_k_m"))
    # published llama.cpp Q4_K_M of Llama-3.1-8B-Instruct: 4,920,739,232 bytes (issue: within 3%)
    assert e8["bytes"] == pytest.approx(4_920_739_232, rel=0.03)
    assert 4.7 < e8["bpw"] < 5.0 and e8["format"] == "gguf"
    assert set(e8["per_type"]) == {"F32", "Q4_K", "Q6_K"}
    e70 = estimate_weights(arch_of("llama3_70b"), gguf_storage("q4_k_m"))
    assert e70["bytes"] == pytest.approx(42.5e9, rel=0.03)   # published Llama-3.x-70B Q4_K_M: 42.5 GB


def test_estimate_ordering_and_methods():
    a = arch_of("llama3_8b")
    sizes = {m: method_bytes(a, m) for m in
             ("q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_k_s", "q3_k_m", "q2_k",
              "gptq_w4", "awq_w4", "autoround_w4", "fp8_dynamic", "w8a8_smoothquant",
              "wanda50", "sparsegpt50", "sparsegpt_2of4")}
    sizes["f16"] = estimate_weights(a, gguf_storage("f16"))["bytes"]
    assert sizes["f16"] > sizes["q8_0"] > sizes["q6_k"] > sizes["q5_k_m"] > sizes["q4_k_m"] \
        > sizes["q4_k_s"] > sizes["q3_k_m"] > sizes["q2_k"]
    assert sizes["wanda50"] == sizes["sparsegpt50"] == estimate_weights(a, DENSE)["bytes"]
    assert sizes["f16"] == pytest.approx(sizes["wanda50"], rel=1e-3)
    assert sizes["f16"] == pytest.approx(2 * 8.03e9, rel=0.01)
    assert sizes["q4_k_m"] < sizes["gptq_w4"] < sizes["fp8_dynamic"]   # 16-bit embed + lm_head
    assert sizes["awq_w4"] > sizes["gptq_w4"]                           # zero points
    assert sizes["fp8_dynamic"] == sizes["w8a8_smoothquant"]
    # 2:4 is stored dense like unstructured sparsity (the builds write the parent's bytes)
    assert sizes["sparsegpt_2of4"] == sizes["sparsegpt50"]
    # a composed pipeline deploys its last quantizer
    assert method_bytes(a, "wanda50_q4_k_m") == sizes["q4_k_m"]


def test_estimate_unknown_storage():
    with pytest.raises(SlimError, match="frobnicate"):
        gguf_storage("frobnicate")
    with pytest.raises(SlimError, match="W9A9"):
        compressed_tensors_storage("W9A9")


def test_group_size_and_fallbacks_are_honoured():
    """int weights in groups: data bits + a 16-bit scale per group; a layer whose width the
    group does not divide takes the first fallback that does, or stays 16-bit."""
    a = arch_of("llama3_8b")          # widths 4096 and 14336: 128 and 64 divide both
    w4 = estimate_weights(a, compressed_tensors_storage("W4A16", 128))
    w4g64 = estimate_weights(a, compressed_tensors_storage("W4A16", 64))
    lin = sum(r * c for n, r, c in param_shapes(a) if n.endswith(("_q.weight", "_k.weight",
              "_v.weight", "_output.weight", "gate.weight", "up.weight", "down.weight"))
              and n.startswith("blk."))
    # halving the group adds one 16-bit scale per 128 weights
    assert w4g64["bytes"] - w4["bytes"] == pytest.approx(2 * lin / 128, rel=1e-6)
    smol_g128 = estimate_weights(SMOL, compressed_tensors_storage("W4A16", 128, [64, 32]))
    smol_g64 = estimate_weights(SMOL, compressed_tensors_storage("W4A16", 64))
    # 576-wide layers fall back to 64; 1536-wide down_proj keeps 128
    assert "int4_g64" in smol_g128["per_type"] and "int4_g128" in smol_g128["per_type"]
    assert smol_g128["bytes"] < smol_g64["bytes"]
    kept = estimate_weights(SMOL, compressed_tensors_storage("W4A16", 128, [], "ignore"))
    assert kept["per_type"]["F16 (indivisible)"]["tensors"] == 30 * 6   # all but down_proj
    with pytest.raises(SlimError, match="indivisible: error"):
        estimate_weights(SMOL, compressed_tensors_storage("W4A16", 128, [64], "error"))


def test_kquant_fallback_for_odd_rows():
    types = {n: t for n, _, _, t in gguf_tensor_types(SMOL, "q4_k_m")}
    # 576 and 1536 columns: 576 % 256 != 0 -> legacy fallback, 1536 % 256 == 0 -> k-quant
    assert types["blk.0.attn_q.weight"] == "Q5_0"
    assert types["token_embd.weight"] == "Q8_0"     # tied: output rules, nx % 256 -> Q8_0
    assert types["blk.0.ffn_down.weight"] in ("Q6_K", "Q4_K")
    assert types["blk.0.attn_norm.weight"] == "F32"
    q4 = {n: t for n, _, _, t in gguf_tensor_types(arch_of("llama3_8b"), "q4_k_m")}
    assert q4["output.weight"] == "Q6_K" and q4["token_embd.weight"] == "Q4_K"
    n_q6_v = sum(1 for n, t in q4.items() if n.endswith("attn_v.weight") and t == "Q6_K")
    n_q6_d = sum(1 for n, t in q4.items() if n.endswith("ffn_down.weight") and t == "Q6_K")
    assert n_q6_v == n_q6_d == 16   # use_more_bits: half of the 32 layers


def test_arch_from_hf_config(tmp_path):
    cfg = {"model_type": "llama", **SMOL}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    a = arch_from_hf_config(tmp_path)
    assert a["head_dim"] == 64 and a["num_key_value_heads"] == 3 and a["tie_word_embeddings"]
    assert arch_from_hf_config(tmp_path / "config.json") == a
    with pytest.raises(SlimError):
        arch_from_hf_config(tmp_path / "nope")


def test_arch_from_gguf(tmp_path):
    gguf = pytest.importorskip("gguf")
    import numpy as np

    p = tmp_path / "m.gguf"
    w = gguf.GGUFWriter(str(p), "llama")
    w.add_block_count(2)
    w.add_embedding_length(64)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_context_length(256)
    w.add_token_list([f"t{i}" for i in range(100)])
    # a padded embedding: the vocabulary's length wins over the tensor's rows
    w.add_tensor("token_embd.weight", np.zeros((128, 64), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    a = arch_from_gguf(p)
    assert a["num_hidden_layers"] == 2 and a["hidden_size"] == 64 and a["intermediate_size"] == 128
    assert a["num_attention_heads"] == 4 and a["num_key_value_heads"] == 2 and a["head_dim"] == 16
    assert a["vocab_size"] == 100 and a["tie_word_embeddings"] is True
    assert a["max_position_embeddings"] == 256
    from slim.models.gguf_header import read_gguf_header
    meta, tensors = read_gguf_header(p, ["llama.block_count"], array_lengths=["tokenizer.ggml.tokens"])
    assert meta == {"llama.block_count": 2, "tokenizer.ggml.tokens": 100}
    assert [t.shape for t in tensors] == [(64, 128)]
    with pytest.raises(SlimError):
        arch_from_gguf(tmp_path / "missing.gguf")
