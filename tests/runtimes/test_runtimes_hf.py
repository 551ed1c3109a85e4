"""transformers runtime on a tiny random Llama with SmolLM2's tokenizer."""
from __future__ import annotations

import numpy as np
import pytest

from slim.errors import SlimError


def test_identity(tiny_hf_rt, smol_tokenizer):
    rt = tiny_hf_rt
    assert rt.name == "transformers"
    assert rt.vocab_size == len(smol_tokenizer)
    assert rt.n_ctx == 512
    assert {0, 2} <= set(rt.eog_ids)
    assert rt.model.dtype.__str__() == "torch.float32"


def test_logprobs_shape_and_normalisation(tiny_hf_rt):
    ids = tiny_hf_rt.tokenize("Hello there, how are you doing today?", add_bos=True)
    lp = tiny_hf_rt.logprobs(ids)
    assert lp.dtype == np.float32 and lp.shape == (len(ids), tiny_hf_rt.vocab_size)
    assert np.allclose(np.exp(lp.astype(np.float64)).sum(axis=1), 1.0, atol=1e-5)


def test_logprobs_causal_prefix_consistency(tiny_hf_rt):
    ids = tiny_hf_rt.tokenize("one two three four five six seven", add_bos=True)
    full = tiny_hf_rt.logprobs(ids)
    for i in (0, 3, len(ids) - 1):
        np.testing.assert_allclose(tiny_hf_rt.logprobs(ids[: i + 1])[i], full[i], atol=1e-4)


def test_chat_deterministic(tiny_hf_rt):
    msgs = [{"role": "user", "content": "Say something."}]
    a = tiny_hf_rt.chat(msgs, max_tokens=12)
    assert isinstance(a, str) and a
    assert tiny_hf_rt.chat(msgs, max_tokens=12) == a


def test_render_chat_matches_tokenizer_template(tiny_hf_rt):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert tiny_hf_rt.render_chat(msgs) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n")


def test_generate_respects_max_and_ignore_eos(tiny_hf_rt):
    ids = tiny_hf_rt.tokenize("Hello", add_bos=True)
    out = tiny_hf_rt.generate(ids, 7, ignore_eos=True)
    assert len(out) == 7


def test_speed_keys(tiny_hf_rt):
    s = tiny_hf_rt.speed(prompt_tokens=16, gen_tokens=4)
    assert s["runtime"] == "transformers" and s["threads"] == 1
    assert s["prompt_tokens_per_s"] > 0 and s["gen_tokens_per_s"] > 0


def test_bad_dtype(tiny_hf):
    from slim.runtimes import open_runtime
    with pytest.raises(SlimError, match="dtype"):
        open_runtime(tiny_hf, dtype="int3")


@pytest.mark.slow
def test_compressed_tensors_folder_loads(tmp_path, tiny_hf, tiny_hf_rt):
    """A compressed-tensors (int8 channel-wise, pack-quantized) folder from llm-compressor."""
    import json

    import torch
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from slim.runtimes import open_runtime

    model = AutoModelForCausalLM.from_pretrained(tiny_hf, dtype=torch.float32)
    weights = {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel"}
    oneshot(model=model, recipe=QuantizationModifier(
        ignore=["lm_head"], config_groups={"g0": {"targets": ["Linear"], "weights": weights}}))
    out = tmp_path / "ct"
    model.save_pretrained(out, save_compressed=True)
    AutoTokenizer.from_pretrained(tiny_hf).save_pretrained(out)
    assert "quantization_config" in json.loads((out / "config.json").read_text())

    ids = tiny_hf_rt.tokenize("compressed tensors load on the cpu", add_bos=True)
    with open_runtime(out, n_ctx=128, threads=1) as rt:
        lp = rt.logprobs(ids)
        assert rt.chat([{"role": "user", "content": "Hi"}], max_tokens=4) is not None
    ref = tiny_hf_rt.logprobs(ids)
    diff = np.abs(lp - ref).max()
    assert 0 < diff < 0.5  # quantized, yet the same model
