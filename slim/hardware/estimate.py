"""Estimate an artifact's size from architecture dimensions alone (no weights needed).

GGUF sizes follow llama.cpp's own type selection (``src/llama-quant.cpp``:
``llama_tensor_get_type_impl`` for the k-quant mixtures, ``tensor_type_fallback`` for rows
whose length is not a multiple of a type's block size) and ggml's block sizes
(``ggml/src/ggml.c`` type traits). Sizes are tensor data only; GGUF metadata (tokenizer
vocabulary, merges) adds a few MB.

Other formats (compressed-tensors from llm-compressor / auto-round, dense safetensors)
are estimated from the storage a stage declares (compressed-tensors' preset scheme and the
stage's group size): packed low-bit linear weights plus their scales and zero points;
embeddings, norms and lm_head kept in 16-bit. Nothing here knows a method by name.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from slim.errors import SlimError
from slim.hardware.arch import arch_from_gguf, arch_from_hf_config, normalize_arch

__all__ = ["GGML_TYPES", "GGUF_FTYPES", "DENSE", "param_shapes", "estimate_weights", "n_experts",
           "gguf_storage", "compressed_tensors_storage", "onnx_storage", "gguf_tensor_types",
           "arch_from_hf_config", "arch_from_gguf", "normalize_arch", "NEEDS_IMATRIX_TYPES",
           "ftype_needs_imatrix"]

#: ggml type -> (block size in elements, bytes per block); bits/weight = 8·bytes/block
GGML_TYPES: dict[str, tuple[int, int]] = {
    "F32": (1, 4),
    "F16": (1, 2),
    "BF16": (1, 2),
    "Q8_0": (32, 34),     # 8.5 bpw
    "Q5_1": (32, 24),     # 6.0
    "Q5_0": (32, 22),     # 5.5
    "Q4_1": (32, 20),     # 5.0
    "Q4_0": (32, 18),     # 4.5
    "IQ4_NL": (32, 18),   # 4.5
    "Q6_K": (256, 210),   # 6.5625
    "Q5_K": (256, 176),   # 5.5
    "Q4_K": (256, 144),   # 4.5
    "IQ4_XS": (256, 136),  # 4.25
    "Q3_K": (256, 110),   # 3.4375
    "IQ3_S": (256, 110),  # 3.4375
    "IQ3_XXS": (256, 98),  # 3.0625
    "Q2_K": (256, 84),    # 2.625
    "IQ2_S": (256, 82),   # 2.5625
    "IQ2_XS": (256, 74),  # 2.3125
    "IQ2_XXS": (256, 66),  # 2.0625
    "IQ1_M": (256, 56),   # 1.75
    "IQ1_S": (256, 50),   # 1.5625
}

#: llama.cpp file type -> default tensor type (llama_ftype_get_default_type)
GGUF_FTYPES: dict[str, str] = {
    "f32": "F32", "f16": "F16", "bf16": "BF16",
    "q8_0": "Q8_0", "q5_1": "Q5_1", "q5_0": "Q5_0", "q4_1": "Q4_1", "q4_0": "Q4_0",
    "q6_k": "Q6_K",
    "q5_k_m": "Q5_K", "q5_k_s": "Q5_K",
    "q4_k_m": "Q4_K", "q4_k_s": "Q4_K",
    "q3_k_l": "Q3_K", "q3_k_m": "Q3_K", "q3_k_s": "Q3_K",
    "q2_k": "Q2_K", "q2_k_s": "Q2_K",
    "iq4_nl": "IQ4_NL", "iq4_xs": "IQ4_XS", "iq3_m": "IQ3_S", "iq3_xxs": "IQ3_XXS",
    "iq2_m": "IQ2_S", "iq2_xs": "IQ2_XS",
}

#: ggml types llama.cpp will not write without an importance matrix
#: (``tensor_requires_imatrix`` in src/llama-quant.cpp; token_embd/output are exempt)
NEEDS_IMATRIX_TYPES = frozenset({"IQ3_XXS", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_M", "IQ1_S"})
#: llama.cpp file types whose tensor mixture is the "IQ2 family" branch of
#: llama_tensor_get_type_impl (attn_v, ffn_down, attn_output, token_embd get their own types)
_IQ2_FAMILY = ("iq2_xxs", "iq2_xs", "iq2_s", "iq2_m", "iq1_s", "iq1_m")


def ftype_needs_imatrix(ftype: str) -> bool:
    """True when llama.cpp refuses this file type without an importance matrix: its default
    tensor type is one llama.cpp will not write without one (IQ1_*, IQ2_*, IQ3_XXS)."""
    ft = str(ftype).lower()
    return ft in GGUF_FTYPES and GGUF_FTYPES[ft] in NEEDS_IMATRIX_TYPES

_LINEAR = ("attn_q", "attn_k", "attn_v", "attn_qkv", "attn_output", "ffn_gate", "ffn_up",
           "ffn_down", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps", "ffn_gate_shexp",
           "ffn_up_shexp", "ffn_down_shexp")


def n_experts(a: dict) -> int:
    """Routed experts per MoE layer (0 for a dense model), under either HF spelling."""
    return int(a.get("num_experts") or a.get("num_local_experts") or 0)


#: HF model types whose llama.cpp tensors fuse q/k/v (``attn_qkv``) and gate/up (``ffn_up``)
_FUSED_QKV = ("phi3", "phimoe")


def param_shapes(arch: Any) -> list[tuple[str, int, int]]:
    """Tensors of a decoder as llama.cpp's converter writes them: ``(gguf_name, rows, cols)``.

    ``cols`` is the row length (GGUF ``ne[0]``, the input dimension of a linear layer) —
    the dimension block quantization runs along. 1-D tensors (norms) have ``rows == 1``.
    ``output.weight`` is absent when embeddings are tied. MoE experts are one 3-D tensor
    per projection (``ffn_*_exps``, ``rows`` = experts × rows per expert) plus the router
    (``ffn_gate_inp``) and, for Qwen-MoE, a shared expert (``ffn_*_shexp``); Phi-3 fuses
    q/k/v into ``attn_qkv`` and gate/up into ``ffn_up``. Biases and the small extra norms
    of Qwen/Gemma are left out (well under 0.1% of a 7B model).
    """
    a = normalize_arch(arch, ("hidden_size", "intermediate_size", "num_hidden_layers",
                              "num_attention_heads", "vocab_size"))
    h, ff, L = a["hidden_size"], a["intermediate_size"], a["num_hidden_layers"]
    q_dim = a["num_attention_heads"] * a["head_dim"]
    kv_dim = a["num_key_value_heads"] * a["head_dim"]
    n_exp = n_experts(a)
    fused = a.get("model_type") in _FUSED_QKV
    out: list[tuple[str, int, int]] = [("token_embd.weight", a["vocab_size"], h)]
    for i in range(L):
        b = f"blk.{i}."
        out.append((b + "attn_norm.weight", 1, h))
        if fused:
            out.append((b + "attn_qkv.weight", q_dim + 2 * kv_dim, h))
        else:
            out += [(b + "attn_q.weight", q_dim, h), (b + "attn_k.weight", kv_dim, h),
                    (b + "attn_v.weight", kv_dim, h)]
        out += [(b + "attn_output.weight", h, q_dim), (b + "ffn_norm.weight", 1, h)]
        if n_exp > 1:
            eff = int(a.get("moe_intermediate_size") or ff)
            out += [(b + "ffn_gate_inp.weight", n_exp, h),
                    (b + "ffn_gate_exps.weight", n_exp * eff, h),
                    (b + "ffn_up_exps.weight", n_exp * eff, h),
                    (b + "ffn_down_exps.weight", n_exp * h, eff)]
            sh = int(a.get("shared_expert_intermediate_size") or 0)
            if sh:
                out += [(b + "ffn_gate_inp_shexp.weight", 1, h),
                        (b + "ffn_gate_shexp.weight", sh, h), (b + "ffn_up_shexp.weight", sh, h),
                        (b + "ffn_down_shexp.weight", h, sh)]
        elif fused:
            out += [(b + "ffn_up.weight", 2 * ff, h), (b + "ffn_down.weight", h, ff)]
        else:
            out += [(b + "ffn_gate.weight", ff, h), (b + "ffn_up.weight", ff, h),
                    (b + "ffn_down.weight", h, ff)]
    out.append(("output_norm.weight", 1, h))
    if not a["tie_word_embeddings"]:
        out.append(("output.weight", a["vocab_size"], h))
    return out


def _type_bytes(t: str, rows: int, cols: int) -> int:
    blk, size = GGML_TYPES[t]
    return rows * math.ceil(cols / blk) * size


def _fallback(t: str, cols: int) -> str:
    """llama.cpp tensor_type_fallback: a row length the block size does not divide."""
    if cols % GGML_TYPES[t][0] == 0:
        return t
    alt = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0",
           "IQ1_S": "IQ4_NL", "IQ1_M": "IQ4_NL", "IQ2_XXS": "IQ4_NL", "IQ2_XS": "IQ4_NL",
           "IQ2_S": "IQ4_NL", "IQ3_XXS": "IQ4_NL", "IQ3_S": "IQ4_NL",
           "IQ4_XS": "IQ4_NL"}.get(t, "F16")
    return alt if cols % GGML_TYPES[alt][0] == 0 else "F16"


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def gguf_tensor_types(arch: Any, ftype: str, imatrix: bool = False) -> list[tuple[str, int, int, str]]:
    """Per-tensor GGUF types for a llama.cpp file type: ``(name, rows, cols, type)``."""
    ft = ftype.lower()
    if ft not in GGUF_FTYPES:
        raise SlimError(f"unknown GGUF file type {ftype!r}; known: {', '.join(GGUF_FTYPES)}",
                        "unknown_method")
    a = normalize_arch(arch)
    default = GGUF_FTYPES[ft]
    n_layer = a["num_hidden_layers"]
    n_gqa = a["num_attention_heads"] // a["num_key_value_heads"]
    # llama.cpp: an 80-layer llama with grouped KV is LLM_TYPE_70B (gets attn_v bumped)
    is_70b = n_layer == 80 and a["num_attention_heads"] != a["num_key_value_heads"]
    tied = a["tie_word_embeddings"]
    n_exp = n_experts(a)
    quantized = default not in ("F32", "F16", "BF16")
    i_wv = i_down = 0
    out = []
    shapes = param_shapes(a)
    n_down = sum("ffn_down" in name for name, _, _ in shapes)
    for name, rows, cols in shapes:
        if rows == 1 or "ffn_gate_inp" in name:   # norms (1-D) and MoE routers stay F32
            out.append((name, rows, cols, "F32"))
            continue
        t = default
        if not quantized:
            out.append((name, rows, cols, t))
            continue
        if name == "output.weight" or (tied and name == "token_embd.weight"):
            if cols % GGML_TYPES[t][0] != 0:
                t = "Q8_0"
            elif ft in _IQ2_FAMILY or ft == "iq3_xxs":
                t = "Q5_K"
            elif t != "Q8_0":
                t = "Q6_K"
        elif name == "token_embd.weight":
            if ft in ("iq2_xxs", "iq2_xs", "iq1_s", "iq1_m"):
                t = "Q2_K"
            elif ft in ("iq2_s", "iq2_m", "iq3_xxs"):
                t = "IQ3_S"
        elif ft in _IQ2_FAMILY:
            iq2s = ft in ("iq2_s", "iq2_m")
            if name.endswith("attn_v.weight") or name.endswith("attn_qkv.weight"):
                t = "Q4_K" if n_gqa >= 4 or n_exp >= 4 else ("IQ3_S" if iq2s else "Q2_K")
                i_wv += 1
            elif name.endswith("attn_k.weight") and n_exp == 8:
                t = "Q4_K"
            elif "ffn_down" in name:
                if i_down < n_down // 8:     # llama.cpp counts ffn_down tensors here, not layers
                    t = "IQ3_S" if iq2s else "Q2_K"
                i_down += 1
            elif name.endswith("attn_output.weight"):
                if n_exp == 8:
                    t = "Q5_K"
                elif ft in ("iq1_s", "iq1_m"):
                    t = "IQ2_XXS"
                elif iq2s:
                    t = "IQ3_S"
        elif name.endswith("attn_v.weight") or name.endswith("attn_qkv.weight"):
            if ft == "q2_k":
                t = "Q4_K" if n_gqa >= 4 else "Q3_K"
            elif ft == "q2_k_s" and n_gqa >= 4:
                t = "Q4_K"
            elif ft == "iq3_xxs":
                t = "Q4_K" if n_gqa >= 4 else ("IQ3_XXS" if imatrix else "IQ3_S")
            elif ft == "iq3_m":
                t = "Q4_K"
            elif ft == "q3_k_m":
                t = "Q5_K" if i_wv < 2 else "Q4_K"
            elif ft == "q3_k_l":
                t = "Q5_K"
            elif ft in ("q4_k_m", "q5_k_m") and _use_more_bits(i_wv, n_layer):
                t = "Q6_K"
            elif ft == "q4_k_s" and i_wv < 4:
                t = "Q5_K"
            elif ft in ("iq4_nl", "iq4_xs") and n_gqa >= 4:
                t = "Q5_K"
            if is_70b and t in ("Q3_K", "Q4_K"):
                t = "Q5_K"
            if n_exp == 8:                  # llama.cpp: "bumping this to Q8_0 trades ~128MB"
                t = "Q8_0"
            i_wv += 1
        elif name.endswith("attn_k.weight") and n_exp == 8:
            t = "Q8_0"
        elif (name.endswith("attn_k.weight") or name.endswith("attn_q.weight")) and ft == "iq3_xxs":
            t = "IQ2_S"
        elif "ffn_down" in name:
            # llama.cpp's layer_info: MoE models take the layer from the tensor name
            i = int(name.split(".")[1]) if n_exp > 1 else i_down
            if ft == "q2_k":
                t = "Q3_K"
            elif ft == "q2_k_s":
                if i < n_layer // 8:
                    t = "Q4_K"
            elif ft == "iq3_xxs" and not imatrix:
                t = "Q4_K" if i < n_layer // 8 else "Q3_K"
            elif ft == "iq3_m":
                if i < n_layer // 8 or (n_exp == 8 and _use_more_bits(i, n_layer)):
                    t = "Q4_K"
            elif ft in ("iq4_nl", "iq4_xs") and not imatrix:
                if i < n_layer // 8:
                    t = "Q5_K"
            elif ft == "q3_k_m":
                t = "Q5_K" if i < n_layer // 16 else "Q4_K"
            elif ft == "q3_k_l":
                t = "Q5_K"
            elif ft == "q4_k_m":
                if _use_more_bits(i, n_layer):
                    t = "Q6_K"
            elif ft == "q5_k_m" and _use_more_bits(i, n_layer):
                t = "Q6_K"
            elif ft == "q4_k_s" and i < n_layer // 8:
                t = "Q5_K"
            elif ft in ("q4_0", "q5_0") and imatrix and i < n_layer // 8:
                t = "Q4_1" if ft == "q4_0" else "Q5_1"
            i_down += 1
        elif name.endswith("attn_output.weight"):
            if n_exp == 8:
                t = "Q5_K" if ft in ("q2_k", "q3_k_s", "q3_k_m", "q4_k_s", "q4_k_m", "iq3_xxs",
                                     "iq3_m", "iq4_nl", "iq4_xs") else t
            else:
                t = {"q2_k": "Q3_K", "q3_k_m": "Q4_K", "q3_k_l": "Q5_K", "iq3_xxs": "IQ3_S",
                     "iq3_m": "Q4_K"}.get(ft, t)
        out.append((name, rows, cols, _fallback(t, cols)))
    return out


def _summarize(method: str, fmt: str, rows: list[tuple[str, int, int, str, int]]) -> dict:
    per_type: dict[str, dict[str, int]] = {}
    total_b = total_p = 0
    for _name, r, c, t, nbytes in rows:
        d = per_type.setdefault(t, {"tensors": 0, "params": 0, "bytes": 0})
        d["tensors"] += 1
        d["params"] += r * c
        d["bytes"] += nbytes
        total_b += nbytes
        total_p += r * c
    return {"method": method, "format": fmt, "bytes": total_b, "params": total_p,
            "bpw": 8.0 * total_b / total_p if total_p else 0.0, "per_type": per_type,
            "approximate": True}


def gguf_storage(ftype: str, imatrix: bool = False) -> dict:
    """Storage of a llama.cpp file type (``q4_k_m``, ``f16``): llama.cpp's own per-tensor rules."""
    ft = str(ftype).lower()
    if ft not in GGUF_FTYPES:
        raise SlimError(f"no size model for GGUF file type {ftype!r}; known: "
                        f"{', '.join(GGUF_FTYPES)}", "unknown_method")
    return {"format": "gguf", "ftype": ft, "imatrix": bool(imatrix)}


def compressed_tensors_storage(scheme: str, group_size: int | None = None,
                               fallbacks: Sequence[int] = (), indivisible: str = "fallback",
                               sym: bool | None = None, quantize_lm_head: bool = False) -> dict:
    """Storage of a compressed-tensors preset scheme (``W4A16``, ``W3A16``, ``FP8_DYNAMIC``...).

    Bits, strategy (group / channel / tensor), default group size and symmetry come from
    compressed-tensors' own preset table; ``group_size`` (the stage's param) overrides the
    preset's, and ``fallbacks``/``indivisible`` follow the per-layer policy of the stage
    (the largest of ``[group_size, *fallbacks]`` dividing a layer's input width; none: the
    layer stays 16-bit, or with ``indivisible: error`` the stage refuses).
    """
    try:
        from compressed_tensors.quantization.quant_scheme import PRESET_SCHEMES
    except ImportError as e:   # a runtime dependency: say so rather than guess the scheme
        raise SlimError(f"sizing compressed-tensors scheme {scheme!r} needs the "
                        f"compressed-tensors package ({e})", "unknown_method") from None
    if scheme not in PRESET_SCHEMES:
        raise SlimError(f"no compressed-tensors preset scheme {scheme!r}; known: "
                        f"{', '.join(sorted(PRESET_SCHEMES))}", "unknown_method")
    w = PRESET_SCHEMES[scheme]["weights"]
    strategy = str(getattr(w.strategy, "value", w.strategy))
    linear: dict[str, Any] = {"bits": int(w.num_bits), "type": str(getattr(w.type, "value", w.type)),
                              "strategy": strategy,
                              "sym": bool(w.symmetric if sym is None else sym),
                              "lm_head": bool(quantize_lm_head)}
    if strategy == "group":
        linear.update({"group": int(group_size or w.group_size), "fallbacks": list(fallbacks),
                       "indivisible": indivisible})
    return {"format": "compressed-tensors", "scheme": scheme, "linear": linear}


def onnx_storage(precision: str, block_size: int = 32, io_dtype: str = "fp32",
                 symmetric: bool = True, algo: str = "default",
                 mixed_precision: str | None = None) -> dict:
    """Storage of an onnxruntime-genai builder export (what its graph holds, checked against
    exports of tiny and SmolLM2 models): int4/int8 ``MatMulNBits`` for every decoder linear
    layer and the lm_head, K padded to the block, one ``io_dtype`` scale per block (symmetric:
    no zero points); a tied int4 embedding is the lm_head's own tensor (GatherBlockQuantized),
    a tied int8 one is a separate ``io_dtype`` table (Gather has no int8 form); fp32/fp16/bf16
    store everything in that dtype, a tied embedding once. Asymmetric weights and the k_quant
    algorithm add a packed zero point per block. ``mixed_precision`` (the builder's
    ``matmul_mixed_precision``): ``last_matmul:int8`` makes the lm_head int8 (a tied embedding
    shares it), ``mixed_layers:int8`` the fused q/k/v and down projections of llama.cpp's
    "more bits" layers (first and last eighth, every third between)."""
    mixed = {}
    for part in str(mixed_precision or "").split(","):
        sel, _, typ = part.partition(":")
        if sel and typ in ("int4", "int8"):
            mixed[sel] = int(typ[3:])
    return {"format": "onnx", "precision": str(precision), "block": int(block_size),
            "io_dtype": str(io_dtype), "zero_points": (not symmetric) or algo == "k_quant",
            "mixed": mixed}


_IO_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}


def _onnx_rows(a: dict, storage: dict) -> list[tuple[str, int, int, str, int]]:
    prec, io = storage["precision"], storage.get("io_dtype", "fp32")
    io_b = _IO_BYTES.get(io, 4)
    bits = {"int4": 4, "int8": 8}.get(prec)
    blk = int(storage.get("block", 32))
    tied = a["tie_word_embeddings"]
    mixed = storage.get("mixed") or {}
    n_layer = a["num_hidden_layers"]
    rows = []
    for name, r, c in param_shapes(a):
        is_head = name == "output.weight" or (tied and name == "token_embd.weight")
        linear = is_head or any(name.endswith(f"{k}.weight") for k in _LINEAR)
        if bits and linear:
            nb = bits
            if is_head and "last_matmul" in mixed:
                nb = mixed["last_matmul"]
            elif "mixed_layers" in mixed and name.startswith("blk.") and \
                    name.split(".")[2] in ("attn_q", "attn_k", "attn_v", "attn_qkv", "ffn_down") \
                    and _use_more_bits(int(name.split(".")[1]), n_layer):
                nb = mixed["mixed_layers"]
            n_blocks = math.ceil(c / blk)
            nbytes = r * n_blocks * blk * nb // 8 + r * n_blocks * io_b
            if storage.get("zero_points"):
                nbytes += math.ceil(r * n_blocks * nb / 8)       # packed zero points
            rows.append((name, r, c, f"int{nb}_b{blk}", nbytes))
            if tied and name == "token_embd.weight" and bits == 8:   # the Gather table
                rows.append(("token_embd.gather", 0, c, io, io_b * r * c))  # no new params
        else:
            b = _IO_BYTES.get(prec, io_b)
            rows.append((name, r, c, prec if prec in _IO_BYTES else io, b * r * c))
    # the rotary cos/sin caches: max positions × head_dim/2 each, in the I/O dtype (not params)
    pos = int(a.get("max_position_embeddings") or 0)
    if pos:
        rows.append(("rotary_cache", 0, 0, "rotary cache", 2 * pos * (a["head_dim"] // 2) * io_b))
    return rows


#: the parent's dtype, unquantized: what pruning, noise and distillation stages write
DENSE: dict = {"format": "safetensors", "linear": {"bits": 16}}


def _group_for(cols: int, lin: dict) -> int | None:
    """The group size a layer of input width ``cols`` gets (None: the layer stays 16-bit)."""
    g = int(lin["group"])
    policy = lin.get("indivisible", "fallback")
    tries = [g] + ([int(x) for x in lin.get("fallbacks") or []] if policy == "fallback" else [])
    for size in sorted(set(tries), key=tries.index):
        if cols % size == 0:
            return size
    if policy == "error":
        raise SlimError(f"a layer of input width {cols} is not divisible by group size {g} and "
                        f"the stage has indivisible: error (it would refuse to build)",
                        "unknown_method")
    return None


def _linear_bytes(r: int, c: int, lin: dict) -> tuple[str, int]:
    bits = int(lin.get("bits", 16))
    if bits >= 16:
        return "F16", 2 * r * c
    asym = "" if lin.get("sym", True) else "_asym"
    data = math.ceil(r * c * bits / 8)
    strategy = lin.get("strategy", "channel")
    if strategy == "group":
        g = _group_for(c, lin)
        if g is None:
            return "F16 (indivisible)", 2 * r * c
        scales = r * (c // g)
        label = f"{lin.get('type', 'int')}{bits}_g{g}{asym}"
    elif strategy == "tensor":
        scales, label = 1, f"{lin.get('type', 'int')}{bits}_tensor{asym}"
    else:
        scales, label = r, f"{lin.get('type', 'int')}{bits}_channel{asym}"
    nbytes = data + 2 * scales                       # 16-bit scales
    if asym:
        nbytes += math.ceil(scales * bits / 8)       # packed zero points
    return label, nbytes


def estimate_weights(arch: Any, storage: dict) -> dict:
    """Bytes of the weights stored as ``storage`` for ``arch``, without the weights.

    ``storage`` is what a stage declares (its module's ``storage(params)``): ``gguf_storage``,
    ``compressed_tensors_storage`` or ``DENSE``. Returns ``{method, format, bytes, params, bpw,
    per_type: {type: {tensors, params, bytes}}, approximate}``. For non-GGUF formats the
    decoder's linear layers take the scheme; embeddings and norms (and lm_head unless the
    storage says ``lm_head: true``) stay 16-bit.
    """
    fmt = storage.get("format")
    if fmt == "gguf" and storage.get("fit"):   # method=fit: sized by slim.compress.fit_cost
        raise SlimError("method=fit is sized by allocating its budget on a tier "
                        "(slim.compress.fit_cost.estimate_allocation)", "unknown_method")
    if fmt == "gguf":
        ft = storage["ftype"]
        rows = [(n, r, c, t, _type_bytes(t, r, c))
                for n, r, c, t in gguf_tensor_types(arch, ft, bool(storage.get("imatrix")))]
        return _summarize(ft, "gguf", rows)
    if fmt == "onnx":
        rows = _onnx_rows(normalize_arch(arch), storage)
        return _summarize(f"onnx {storage['precision']}", "onnx", rows)
    lin = storage.get("linear") or {"bits": 16}
    a = normalize_arch(arch)
    linear_names = _LINEAR + (("output",) if lin.get("lm_head") else ())
    rows = []
    for name, r, c in param_shapes(a):
        if any(name.endswith(f"{k}.weight") for k in linear_names):
            label, nbytes = _linear_bytes(r, c, lin)
        else:
            label, nbytes = "F16", 2 * r * c
        rows.append((name, r, c, label, nbytes))
    return _summarize(storage.get("scheme") or fmt, fmt, rows)
