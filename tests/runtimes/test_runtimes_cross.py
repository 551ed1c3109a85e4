"""The same tiny model as an HF folder (transformers) and an F32 GGUF (llama.cpp)."""
from __future__ import annotations

import numpy as np

MESSAGES = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi!"},
     {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "2+2?"}],
]
TEXT = ("Quantization maps 16-bit weights to 4-bit codes; perplexity and KL divergence "
        "measure what the compressed model lost. Émile paid 12,34 € — naïve café.")


def test_render_chat_identical(tiny_hf_rt, tiny_cpp_rt):
    for m in MESSAGES:
        assert tiny_hf_rt.render_chat(m) == tiny_cpp_rt.render_chat(m)
        assert (tiny_hf_rt.render_chat(m, add_generation_prompt=False)
                == tiny_cpp_rt.render_chat(m, add_generation_prompt=False))


def test_render_chat_identical_with_real_smollm2(tiny_hf_rt, smol_rt):
    # the tiny HF model carries SmolLM2's tokenizer; smol_rt is SmolLM2's own GGUF
    for m in MESSAGES:
        assert tiny_hf_rt.render_chat(m) == smol_rt.render_chat(m)


def test_tokenization_identical(tiny_hf_rt, tiny_cpp_rt):
    for m in MESSAGES:
        prompt = tiny_hf_rt.render_chat(m)
        assert tiny_hf_rt.tokenize(prompt, False) == tiny_cpp_rt.tokenize(prompt, False)
    for add_bos in (True, False):
        assert tiny_hf_rt.tokenize(TEXT, add_bos) == tiny_cpp_rt.tokenize(TEXT, add_bos)
    assert tiny_hf_rt.vocab_size == tiny_cpp_rt.vocab_size


def test_logprobs_agree(tiny_hf_rt, tiny_cpp_rt):
    ids = tiny_hf_rt.tokenize(TEXT * 3, add_bos=True)
    a, b = tiny_hf_rt.logprobs(ids), tiny_cpp_rt.logprobs(ids)
    assert a.shape == b.shape
    p = np.exp(a.astype(np.float64))
    kld = (p * (a.astype(np.float64) - b)).sum(axis=1)
    assert kld.mean() < 1e-5
    assert np.abs(a - b).max() < 1e-2


def test_greedy_chat_agrees(tiny_hf_rt, tiny_cpp_rt):
    for m in MESSAGES:
        prompt = tiny_hf_rt.render_chat(m)
        ids = tiny_hf_rt.tokenize(prompt, add_bos=False)
        assert tiny_hf_rt.generate(ids, 16) == tiny_cpp_rt.generate(ids, 16)
        assert tiny_hf_rt.chat(m, 16) == tiny_cpp_rt.chat(m, 16)


def test_stop_strings_agree(tiny_hf_rt, tiny_cpp_rt):
    ids = tiny_hf_rt.tokenize("Hello", add_bos=True)
    free = tiny_hf_rt.generate(ids, 12, ignore_eos=True)
    text = tiny_hf_rt.detokenize(free)
    stop = text[len(text) // 2: len(text) // 2 + 2]  # a string the greedy output contains
    a = tiny_hf_rt.generate(ids, 12, stop=[stop], ignore_eos=True)
    b = tiny_cpp_rt.generate(ids, 12, stop=[stop], ignore_eos=True)
    assert a == b and len(a) < len(free)
    assert stop in tiny_hf_rt.detokenize(a)
