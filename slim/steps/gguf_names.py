"""HF module names -> GGUF tensor names, using gguf-py's own tensor name map.

The architecture comes from the F16 GGUF's ``general.architecture`` (what the
converter chose), not from the HF ``model_type``: the two differ (``gemma3_text``
-> ``gemma3``, ``qwen2_moe`` -> ``qwen2moe``, ``mistral`` -> ``llama``).
"""
from __future__ import annotations

import re


def gguf_arch(arch_name: str):
    import gguf
    by_name = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}
    return by_name.get(arch_name)


def hf_to_gguf_names(model, gguf_tensors: dict, arch_name: str) -> dict[str, str]:
    """Map every nn.Linear's module name to its GGUF tensor name present in the file."""
    import gguf
    import torch

    arch = gguf_arch(arch_name)
    if arch is None:
        return {}
    tmap = gguf.get_tensor_name_map(arch, model.config.num_hidden_layers)
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            g = tmap.get_name(name + ".weight", try_suffixes=(".weight",))
            if g and g in gguf_tensors:
                out[name] = g
    return out


def expert_modules(model, gguf_tensors: dict) -> dict[str, dict[str, str]]:
    """MoE expert blocks stored as 3D parameters (transformers 5) -> their GGUF ``*_exps`` names.

    ``{module name: {"gate": ..., "up": ..., "down": ...}}``; every name must be in the file.
    """
    out = {}
    for name, mod in model.named_modules():
        gu, down = getattr(mod, "gate_up_proj", None), getattr(mod, "down_proj", None)
        if not (getattr(gu, "dim", lambda: 0)() == 3 and getattr(down, "dim", lambda: 0)() == 3):
            continue
        m = re.search(r"layers\.(\d+)\.", name)
        if not m:
            continue
        names = {k: f"blk.{m.group(1)}.ffn_{k}_exps.weight" for k in ("gate", "up", "down")}
        if all(n in gguf_tensors for n in names.values()):
            out[name] = names
    return out
