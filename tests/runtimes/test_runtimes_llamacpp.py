"""llama.cpp runtime on the embedded SmolLM2-135M-Instruct Q4_1 GGUF (loads in ~1 s)."""
from __future__ import annotations

import numpy as np
import pytest

TEXT = ("The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, "
        "France. It is named after the engineer Gustave Eiffel, whose company designed and "
        "built the tower from 1887 to 1889.")


def test_identity(smol_rt):
    assert smol_rt.name == "llama.cpp"
    assert smol_rt.vocab_size == 49152
    assert smol_rt.n_ctx == 1024
    assert {0, 2} <= set(smol_rt.eog_ids)  # <|endoftext|>, <|im_end|>


def test_tokenize_parses_special_tokens(smol_rt):
    ids = smol_rt.tokenize("<|im_start|>user\nHi<|im_end|>", add_bos=False)
    assert ids[0] == 1 and ids[-1] == 2
    # SmolLM2 does not use a BOS (tokenizer.ggml.add_bos_token = false)
    assert smol_rt.tokenize("Hello", add_bos=True) == smol_rt.tokenize("Hello", add_bos=False)
    assert smol_rt.detokenize(smol_rt.tokenize("Hello world", add_bos=False)) == "Hello world"


def test_logprobs_rows_are_distributions(smol_rt):
    ids = smol_rt.tokenize(TEXT, add_bos=True)
    lp = smol_rt.logprobs(ids)
    assert lp.dtype == np.float32 and lp.shape == (len(ids), smol_rt.vocab_size)
    assert np.allclose(np.exp(lp.astype(np.float64)).sum(axis=1), 1.0, atol=1e-5)
    assert (lp <= 0).all()
    # a real model predicts its own well-formed text far better than chance
    nll = -lp[np.arange(len(ids) - 1), ids[1:]].mean()
    assert nll < 5.0 < np.log(smol_rt.vocab_size)


def test_logprobs_consistent_with_prefix_evals(smol_rt):
    ids = smol_rt.tokenize(TEXT, add_bos=True)
    full = smol_rt.logprobs(ids)
    for i in (0, 3, len(ids) // 2, len(ids) - 1):
        fresh = smol_rt.logprobs(ids[: i + 1])[i]
        np.testing.assert_allclose(fresh, full[i], atol=2e-3)
        assert fresh.argmax() == full[i].argmax()


def test_logprobs_deterministic_and_history_free(smol_rt):
    ids = smol_rt.tokenize(TEXT, add_bos=True)
    a = smol_rt.logprobs(ids)
    smol_rt.chat([{"role": "user", "content": "Hi"}], max_tokens=4)
    smol_rt.logprobs(ids[:5])
    b = smol_rt.logprobs(ids)
    assert np.array_equal(a, b)


def test_logprobs_rejects_bad_windows(smol_rt):
    with pytest.raises(ValueError, match="n_ctx"):
        smol_rt.logprobs([1] * (smol_rt.n_ctx + 1))
    with pytest.raises(ValueError):
        smol_rt.logprobs([])
    with pytest.raises(ValueError, match="vocabulary"):
        smol_rt.logprobs([smol_rt.vocab_size])


def test_render_chat_uses_gguf_template(smol_rt):
    text = smol_rt.render_chat([{"role": "user", "content": "Hello"}])
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith("<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n")


def test_chat_greedy_answers_and_is_deterministic(smol_rt):
    msgs = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
    a = smol_rt.chat(msgs, max_tokens=24)
    assert "Paris" in a
    assert smol_rt.chat(msgs, max_tokens=24) == a
    assert "<|im_end|>" not in a


def test_generate_stop_strings(smol_rt):
    ids = smol_rt.tokenize("Count: 1, 2, 3, 4,", add_bos=False)
    free = smol_rt.detokenize(smol_rt.generate(ids, 12))
    stopped = smol_rt.detokenize(smol_rt.generate(ids, 12, stop=[","]))
    assert "," in stopped and stopped.count(",") == 1
    assert free.startswith(stopped[: stopped.index(",")])


def test_speed_keys(smol_rt):
    s = smol_rt.speed(prompt_tokens=32, gen_tokens=8)
    assert set(s) >= {"prompt_tokens_per_s", "gen_tokens_per_s", "prompt_tokens", "gen_tokens",
                      "threads", "runtime"}
    assert s["runtime"] == "llama.cpp" and s["prompt_tokens"] == 32 and s["gen_tokens"] == 8
    assert s["prompt_tokens_per_s"] > 0 and s["gen_tokens_per_s"] > 0
    # the speed test leaves the runtime usable for scoring
    assert smol_rt.logprobs([1, 2, 3]).shape == (3, smol_rt.vocab_size)
