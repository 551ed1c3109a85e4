"""Hardware tiers: memory fit, decode-speed bounds, size estimates and capability checks.

Tiers are data (``conf/hardware/*.yaml``); nothing here tests a tier's name.
"""
from __future__ import annotations

from slim.hardware.arch import arch_from_gguf, arch_from_hf_config, normalize_arch
from slim.hardware.capabilities import check, runnable_methods
from slim.hardware.estimate import (DENSE, compressed_tensors_storage, estimate_weights,
                                    gguf_storage, gguf_tensor_types, param_shapes)
from slim.hardware.fit import decode_estimate, fit_report, fmt_bytes, kv_cache_bytes, usable_bytes

__all__ = [
    "arch_from_gguf", "arch_from_hf_config", "normalize_arch",
    "check", "runnable_methods",
    "DENSE", "compressed_tensors_storage", "estimate_weights", "gguf_storage",
    "gguf_tensor_types", "param_shapes",
    "decode_estimate", "fit_report", "fmt_bytes", "kv_cache_bytes", "usable_bytes",
]
