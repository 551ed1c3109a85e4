"""Small in-process models for the distill/student/lowrank tests."""
from __future__ import annotations

import torch


def small_llama(layers=6, model_type="llama", **kw):
    from transformers import AutoConfig, AutoModelForCausalLM
    cfg = AutoConfig.for_model(model_type, vocab_size=320, hidden_size=64, intermediate_size=256,
                               num_hidden_layers=layers, num_attention_heads=4,
                               num_key_value_heads=2, max_position_embeddings=128,
                               tie_word_embeddings=True, **kw)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
