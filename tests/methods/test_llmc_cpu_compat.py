"""slim.compat.llmc_cpu: AWQ on a machine with no accelerator.

These tests pin the workaround to the upstream behaviour it works around:

* without the patch, llm-compressor's AWQ still fails on this machine with torch's
  "Cannot access accelerator device" error. When this test fails, upstream (torch or
  llm-compressor) no longer pins memory without an accelerator: delete
  ``slim/compat/llmc_cpu.py`` and its use in ``slim/steps/llmc_oneshot.py``;
* with the patch, the same AWQ run completes and quantizes the model.

A micro Llama (1 layer, 64 wide) keeps each run to seconds.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("llmcompressor")

from slim.compat import llmc_cpu  # noqa: E402

needs_cpu_only = pytest.mark.skipif(
    torch.accelerator.is_available(),
    reason="an accelerator is present: llm-compressor pins memory legitimately here")


def _word_tokenizer():
    """A 128-word tokenizer: oneshot wants a processor even for pre-tokenized data."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    t = Tokenizer(models.WordLevel({f"w{i}": i for i in range(128)}, unk_token="w0"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=t, unk_token="w0", pad_token="w1")


def _micro_awq(tmp):
    import numpy as np
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from llmcompressor.modifiers.transform.awq import AWQModifier
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      max_position_embeddings=64, tie_word_embeddings=True)
    # saved and reloaded like the step does (oneshot looks for files at name_or_path)
    LlamaForCausalLM(cfg).save_pretrained(tmp)
    _word_tokenizer().save_pretrained(tmp)
    model = LlamaForCausalLM.from_pretrained(tmp).eval()
    ids = torch.from_numpy(np.random.default_rng(0).integers(3, 128, size=(2, 16)))
    # a ready DataLoader: oneshot then needs no tokenizer/processor for the model
    loader = torch.utils.data.DataLoader(
        [{"input_ids": i, "attention_mask": torch.ones_like(i)} for i in ids], batch_size=1)
    scheme = {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "symmetric": False,
                                                 "strategy": "group", "group_size": 32}}
    recipe = [AWQModifier(n_grid=3), QuantizationModifier(config_groups={"g": scheme},
                                                          ignore=["lm_head"])]
    oneshot(model=model, dataset=loader, recipe=recipe)
    return model


@needs_cpu_only
def test_workaround_still_needed(tmp_path):
    """Fails once upstream is fixed: then remove slim/compat/llmc_cpu.py."""
    assert llmc_cpu.pinning_fails(), (
        "pinning CPU memory works on this CPU-only machine now (torch changed): "
        "slim/compat/llmc_cpu.py is no longer needed")
    with pytest.raises(RuntimeError, match=llmc_cpu.ERROR_TEXT):
        _micro_awq(tmp_path)


@needs_cpu_only
def test_workaround_works(tmp_path):
    from llmcompressor.pipelines.cache import IntermediatesCache
    original = IntermediatesCache.pin_memory
    with llmc_cpu.cpu_pin_memory_workaround() as patched:
        assert patched
        model = _micro_awq(tmp_path)
    assert IntermediatesCache.pin_memory is original  # restored after the block
    proj = model.model.layers[0].mlp.down_proj
    assert getattr(proj, "quantization_scheme", None) is not None
    assert proj.weight_scale.shape[-1] == 128 // 32


def test_noop_when_pinning_works(monkeypatch):
    monkeypatch.setattr(llmc_cpu, "pinning_fails", lambda: False)
    from llmcompressor.pipelines.cache import IntermediatesCache
    original = IntermediatesCache.pin_memory
    with llmc_cpu.cpu_pin_memory_workaround() as patched:
        assert patched is False
        assert IntermediatesCache.pin_memory is original
