"""Hardware fit: does an artifact fit a tier's memory, and how fast could it decode there?

Memory: weights + KV cache at the tier's context length + runtime overhead, against the
tier's usable memory (``memory_gb · usable_fraction − reserve_gb``; the tier's ``*_gb`` values
are GiB, see :mod:`slim.units`).
Speed: decode is memory-bound, so tokens/s ≤ bandwidth ÷ bytes read per generated token.
"""
from __future__ import annotations

import math
from typing import Any

from slim.errors import SlimError
from slim.hardware.arch import normalize_arch
from slim.hardware.fields import get as _get
from slim.units import GIB, fmt_bytes

#: KV cache element types (llama.cpp --cache-type-k/-v) -> (bytes per block, elements per block)
KV_DTYPES: dict[str, tuple[int, int]] = {
    "f32": (4, 1),
    "f16": (2, 1),
    "bf16": (2, 1),
    "fp8": (1, 1),
    "q8_0": (34, 32),
    "q5_1": (24, 32),
    "q5_0": (22, 32),
    "q4_1": (20, 32),
    "q4_0": (18, 32),
}

#: KV cache types a build may deploy with (``kv_cache=``): llama.cpp's ``-ctk/-ctv`` types whose
#: effect the fidelity step measures (a quantized V cache needs flash attention in llama.cpp)
KV_CACHE_CHOICES = ("f16", "q8_0", "q4_0")


def kv_cache_type(cfg: Any, hw: Any = None) -> str:
    """The KV cache type a build deploys with: ``kv_cache=`` when given, else the tier's
    ``kv_cache_dtype`` (``hw``, default ``cfg.hardware``)."""
    chosen = _get(cfg, "kv_cache", None)
    if chosen:
        return str(chosen).lower()
    return str(_get(hw if hw is not None else _get(cfg, "hardware", {}), "kv_cache_dtype",
                    "f16")).lower()




def usable_bytes(hw: Any) -> int:
    """Memory the model may use on the tier: memory_gb·2³⁰·usable_fraction − reserve_gb·2³⁰."""
    mem = float(_get(hw, "memory_gb", 0.0))
    frac = float(_get(hw, "usable_fraction", 1.0))
    reserve = float(_get(hw, "reserve_gb", 0.0))
    return int(mem * GIB * frac - reserve * GIB)


def _kv_dtype(kv_dtype: str) -> tuple[int, int]:
    key = str(kv_dtype).lower()
    if key not in KV_DTYPES:
        raise SlimError(f"unknown kv_cache_dtype {kv_dtype!r}; one of {', '.join(KV_DTYPES)}",
                        "invalid_config")
    return KV_DTYPES[key]


def kv_cache_bytes(arch: Any, context_length: int, kv_dtype: str = "f16") -> int:
    """layers × kv_heads × head_dim × context × 2 (K and V) × bytes per element."""
    a = normalize_arch(arch)
    if int(context_length) < 0:
        raise SlimError(f"context_length must be ≥ 0 (got {context_length})", "invalid_config")
    per_block, block = _kv_dtype(kv_dtype)
    elems = a["num_hidden_layers"] * a["num_key_value_heads"] * a["head_dim"] * int(context_length) * 2
    return elems * per_block // block if elems % block == 0 else math.ceil(elems * per_block / block)


def _dtype_str(kv_dtype: str) -> str:
    per_block, block = _kv_dtype(kv_dtype)
    return f"{per_block} B" if block == 1 else f"{per_block}/{block} B"


def fit_report(hw: Any, weights_bytes: int, arch: Any, context_length: int | None = None,
               headroom: float = 0.0, kv_dtype: str | None = None) -> dict:
    """Memory fit of an artifact on a tier, with the arithmetic spelled out in ``formula``.

    ``context_length`` defaults to the tier's, capped at the model's
    ``max_position_embeddings`` when the model has one. ``kv_dtype`` (the build's
    ``kv_cache``) defaults to the tier's ``kv_cache_dtype``. ``fits`` means
    total ≤ usable · (1 − headroom).
    """
    if not 0.0 <= float(headroom) < 1.0:
        raise SlimError(f"headroom must be in [0, 1) (got {headroom})", "invalid_config")
    a = normalize_arch(arch)
    limited = False
    if context_length is None:
        context_length = int(_get(hw, "context_length", 4096))
        max_pos = a.get("max_position_embeddings")
        if max_pos and context_length > max_pos:
            context_length, limited = max_pos, True
    context_length = int(context_length)
    kv_dtype = str(kv_dtype or _get(hw, "kv_cache_dtype", "f16")).lower()
    kv = kv_cache_bytes(a, context_length, kv_dtype)
    overhead = int(float(_get(hw, "runtime_overhead_gb", 0.0)) * GIB)
    weights = int(weights_bytes)
    total = weights + kv + overhead
    usable = usable_bytes(hw)
    limit = usable * (1.0 - float(headroom))
    fits = total <= limit
    mem = float(_get(hw, "memory_gb", 0.0))
    frac = float(_get(hw, "usable_fraction", 1.0))
    reserve = float(_get(hw, "reserve_gb", 0.0))
    usable_how = f"{mem:g} GiB × {frac:g}" + (f" − {reserve:g} GiB reserve" if reserve else "")
    limit_str = f"usable {fmt_bytes(usable)} ({usable_how})"
    if headroom:
        limit_str += f" × (1 − {float(headroom):g} headroom) = {fmt_bytes(limit)}"
    formula = (f"weights {fmt_bytes(weights)} + KV {a['num_hidden_layers']} layers"
               f"×{a['num_key_value_heads']} kv heads×{a['head_dim']} dim×{context_length} ctx"
               f"×2×{_dtype_str(kv_dtype)} = {fmt_bytes(kv)} + overhead {fmt_bytes(overhead)}"
               f" = {fmt_bytes(total)} {'≤' if fits else '>'} {limit_str}")
    return {
        "hardware": _get(hw, "name", None),
        "weights_bytes": weights,
        "kv_cache_bytes": kv,
        "overhead_bytes": overhead,
        "total_bytes": total,
        "usable_bytes": usable,
        "headroom": float(headroom),
        "fits": bool(fits),
        "headroom_bytes": usable - total,
        "headroom_fraction": (usable - total) / usable if usable > 0 else float("-inf"),
        "context_length": context_length,
        "context_limited_by_model": limited,
        "kv_cache_dtype": kv_dtype,
        #: what decode reads per generated token at full context (feed to decode_estimate)
        "bytes_per_token": weights + kv,
        "formula": formula,
    }


def decode_estimate(hw: Any, bytes_per_token: int) -> dict:
    """Upper bound on decode speed: bandwidth (GB/s, 10⁹ B/s) ÷ bytes read per token."""
    bw = float(_get(hw, "bandwidth_gbs", 0.0))
    bpt = int(bytes_per_token)
    if bpt <= 0:
        raise SlimError(f"bytes_per_token must be > 0 (got {bytes_per_token})", "invalid_config")
    return {
        "tokens_per_s_upper_bound": bw * 1e9 / bpt,
        "bandwidth_gbs": bw,
        "bytes_per_token": bpt,
        "note": ("upper bound: memory bandwidth ÷ bytes read per generated token "
                 "(weights + KV at full context); real decode is slower"),
    }


def weights_budget(hw: Any, arch: Any, headroom: float = 0.0,
                   kv_dtype: str | None = None) -> tuple[int, str]:
    """(bytes, how): the largest weights file that :func:`fit_report` still says fits — usable ×
    (1 − headroom) − KV cache (``kv_dtype``: the build's ``kv_cache``, default the tier's) at the
    tier's context − runtime overhead (method=fit's budget)."""
    r = fit_report(hw, 0, arch, None, headroom, kv_dtype)
    limit = int(r["usable_bytes"] * (1.0 - float(headroom)))
    b = limit - r["kv_cache_bytes"] - r["overhead_bytes"]
    how = (f"{_get(hw, 'name', 'tier')}: usable {fmt_bytes(r['usable_bytes'])} × (1 − "
           f"{float(headroom):g} headroom) − KV {fmt_bytes(r['kv_cache_bytes'])} "
           f"({r['context_length']} ctx, {r['kv_cache_dtype']}) − overhead "
           f"{fmt_bytes(r['overhead_bytes'])} = {fmt_bytes(b)}")
    return b, how
