"""HF module names -> GGUF tensor names, using gguf's own tensor name map."""
from __future__ import annotations


def hf_to_gguf_names(model, gguf_tensors: dict) -> dict[str, str]:
    """Map every nn.Linear's module name to its GGUF tensor name present in the file."""
    import gguf
    import torch

    arch_name = {"llama": "LLAMA", "qwen2": "QWEN2", "mistral": "LLAMA", "qwen3": "QWEN3",
                 "gemma2": "GEMMA2", "phi3": "PHI3"}.get(model.config.model_type,
                                                         model.config.model_type.upper())
    arch = getattr(gguf.MODEL_ARCH, arch_name, None)
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
