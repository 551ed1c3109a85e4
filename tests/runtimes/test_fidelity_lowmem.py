"""The fidelity step in bounded memory (issue 16): parent and child evaluated one after the
other through a scratch file give the statistics of the old step that held both open at once,
and a transformers parent with 16-bit weights computing in float32 (slim.runtimes.torch_lowmem)
gives the float32 model's logits while giving its weight pages back."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.runtimes.conftest import THREADS
from tests.runtimes.test_fidelity_stream import _ctx, _windows


def _both_open(tokens, n_ctx, parent, child, flash_attn):
    """The step before issue 16: both runtimes open, parent in torch float32 (full logits)."""
    from slim.metrics.fidelity import scored_positions, window_stats
    from slim.runtimes import open_runtime, runtime_kind
    from slim.steps.fidelity_compare import _rows

    a, b = scored_positions(n_ctx)

    def kw(path):
        return {"flash_attn": True} if flash_attn and runtime_kind(path) == "llama.cpp" else {}
    parts: dict[str, list] = {}
    with open_runtime(str(parent), n_ctx=n_ctx, threads=THREADS, **kw(parent)) as prt, \
            open_runtime(str(child), n_ctx=n_ctx, threads=THREADS, **kw(child)) as rt:
        for w in tokens:
            if prt.name == "transformers":
                pl = np.array(prt.logits(w.tolist())[a:b], dtype=np.float32)
            else:
                pl = _rows(prt, w.tolist(), a, b)
            s = window_stats(pl, _rows(rt, w.tolist(), a, b), w[a + 1:b + 1])
            for k, v in s.items():
                parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


@pytest.fixture(scope="module")
def tiny_f16_gguf(tmp_path_factory, tiny_hf):
    from slim.steps.convert_gguf import convert
    out = tmp_path_factory.mktemp("tiny_f16") / "tiny-f16.gguf"
    convert(tiny_hf, out, "f16")
    return out


@pytest.fixture(scope="module")
def tiny_bf16_hf(tmp_path_factory, tiny_hf):
    """The tiny model saved in bf16 (a user's 16-bit folder)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    out = tmp_path_factory.mktemp("tiny_bf16")
    m = AutoModelForCausalLM.from_pretrained(str(tiny_hf), dtype=torch.bfloat16)
    m.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(str(tiny_hf)).save_pretrained(out)
    return out


def test_gguf_parent_and_child_in_turn_equal_both_open(tmp_path, tiny_hf, tiny_gguf, tiny_f16_gguf):
    """llama.cpp parent (F32) then child (F16): the same float32 rows as with both open, so the
    per-token statistics are bit-identical."""
    ref = _windows(tmp_path, tiny_hf)
    mod, ctx = _ctx("fidelity_compare",
                    {"runtime": "llama.cpp", "model_file": tiny_f16_gguf.name,
                     "parent_file": tiny_gguf.name},
                    {"reference": ref, "parent": tiny_gguf.parent, "model": tiny_f16_gguf.parent},
                    tmp_path / "fid")
    mod.run(ctx)
    got = np.load(ctx.out / "per_token.npz")
    want = _both_open(np.load(ref / "tokens.npy"), 64, tiny_gguf, tiny_f16_gguf, True)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    assert json.loads((ctx.out / "fidelity.json").read_text())["kld_mean"] > 0
    assert not list(tmp_path.glob("**/*.f32"))   # the scratch file is not in the step's output


@pytest.mark.parametrize("source", ["float32", "bfloat16"])
def test_noise_floor_in_turn_equals_both_open(tmp_path, tiny_hf, tiny_bf16_hf, tiny_gguf, source):
    """The noise floor's shape (HF parent in torch, GGUF child): the float32 parent's
    statistics, from a float32 folder and from a bf16 folder kept 16-bit (its float32 twin is
    the reference: a float32 load of the same bf16 values)."""
    folder = tiny_hf if source == "float32" else tiny_bf16_hf
    ref = _windows(tmp_path, tiny_hf)
    mod, ctx = _ctx("fidelity_compare",
                    {"runtime": "llama.cpp", "model_file": tiny_gguf.name, "parent_file": ""},
                    {"reference": ref, "parent": folder, "model": tiny_gguf.parent},
                    tmp_path / "fid")
    mod.run(ctx)
    got = np.load(ctx.out / "per_token.npz")
    want = _both_open(np.load(ref / "tokens.npy"), 64, folder, tiny_gguf, True)
    # the LM head runs on the scored rows only (a GEMM of another shape): float rounding only
    tol = {"kld": (1e-6, 1e-12), "nll_parent": (1e-9, 1e-9), "nll_child": (0, 0),
           "delta_p": (0, 1e-9), "top1": (0, 0)}
    for k, (rtol, atol) in tol.items():
        np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol, err_msg=k)


def test_torch_lowmem_equals_float32_copy(tiny_bf16_hf):
    """16-bit weights, float32 math: the logits of the float32 load of the same bf16 values;
    the weight pages are given back and re-read with the same values."""
    import torch
    from transformers import AutoModelForCausalLM

    from slim.runtimes import torch_lowmem as tl
    torch.set_num_threads(THREADS)
    ids = np.random.default_rng(3).integers(0, 2000, 48)
    f32 = AutoModelForCausalLM.from_pretrained(str(tiny_bf16_hf), dtype=torch.float32).eval()
    with torch.inference_mode():
        want = f32(input_ids=torch.tensor([ids.tolist()]), use_cache=False).logits[0, 24:47].numpy()
    assert tl.source_dtype(tiny_bf16_hf) == "bfloat16"
    m = AutoModelForCausalLM.from_pretrained(str(tiny_bf16_hf), dtype=torch.bfloat16).eval()
    tl.compute_float32(m, head_rows=4096)   # the 49k-row head in 13 blocks
    covered = tl.release_pages(m)
    assert m.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
    assert m.model.norm.weight.dtype == torch.float32
    assert covered > 0.9 * sum(p.numel() * 2 for p in m.parameters() if p.dim() == 2)
    got = [tl.scored_logits(m, ids, 24, 47) for _ in range(2)]   # the 2nd after pages dropped
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)
    assert np.abs(got[0] - want).max() < 1e-5


def test_scratch_full_is_a_clear_error(monkeypatch, tmp_path):
    import shutil

    from slim.errors import SlimError
    from slim.steps.fidelity_compare import _scratch
    monkeypatch.setenv("SLIM_SCRATCH_DIR", str(tmp_path))
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 1 << 20))
    with pytest.raises(SlimError, match="SLIM_SCRATCH_DIR"):
        _scratch(1 << 30)


def test_kv_cache_child_in_turn(tmp_path, tiny_hf, smollm_gguf):
    """With a quantized KV cache the third runtime runs alone too, against the parent's and the
    f16-KV child's rows read back. Parent = child (SmolLM2: head size 64, which a q8_0 cache
    needs), so both comparisons read equal rows and must agree exactly."""
    ref = _windows(tmp_path, tiny_hf, chunks=2)
    mod, ctx = _ctx("fidelity_compare",
                    {"runtime": "llama.cpp", "model_file": smollm_gguf.name,
                     "parent_file": smollm_gguf.name, "kv_cache": "q8_0"},
                    {"reference": ref, "parent": smollm_gguf.parent, "model": smollm_gguf.parent},
                    tmp_path / "fid")
    mod.run(ctx)
    s = json.loads((ctx.out / "fidelity.json").read_text())
    kv = s["kv_cache"]
    assert s["kld_max"] < 1e-9 and kv["type"] == "q8_0" and kv["vs_parent"]["tokens"] == 2 * 31
    assert kv["vs_parent"] == kv["vs_f16_kv"] and kv["vs_parent"]["kld_mean"] > 0


def test_window_stats_blocked_equals_one_block():
    """Row blocks (cache-sized float64 temporaries) give the one-block numbers bit for bit."""
    from slim.metrics.fidelity import window_stats
    rng = np.random.default_rng(5)
    p = rng.normal(0, 3, (37, 5000)).astype(np.float32)
    q = (p + rng.normal(0, 0.3, p.shape)).astype(np.float32)
    tgt = rng.integers(0, 5000, 37)
    one = window_stats(p, q, tgt, block=37)
    for blk in (1, 4, 8, 16):
        got = window_stats(p, q, tgt, block=blk)
        for k in one:
            np.testing.assert_array_equal(got[k], one[k], err_msg=f"{k} block {blk}")


def test_windows_tokenized_as_autotokenizer(tmp_path, tiny_hf):
    """The windows step reads a plain fast tokenizer with the tokenizers library: the ids
    AutoTokenizer gives, on the whole held-out corpus (and AutoTokenizer for other classes)."""
    import shutil
    from pathlib import Path

    from transformers import AutoTokenizer

    from slim.steps import fidelity_reference as fr
    text = (Path(__file__).resolve().parents[2] / "data/eval/heldout.txt").read_text("utf-8")
    tok = AutoTokenizer.from_pretrained(str(tiny_hf))
    tok.model_max_length = 1 << 30
    want = tok(text, add_special_tokens=False)["input_ids"]
    cfg = json.loads((tiny_hf / "tokenizer_config.json").read_text())
    for cls in ("TokenizersBackend", "PreTrainedTokenizerFast", "SomethingElse"):
        d = tmp_path / cls
        shutil.copytree(tiny_hf, d, ignore=shutil.ignore_patterns("*.safetensors"))
        (d / "tokenizer_config.json").write_text(json.dumps(dict(cfg, tokenizer_class=cls)))
        if cls == "SomethingElse":   # not a plain fast class: AutoTokenizer decides
            (d / "tokenizer_config.json").write_text(json.dumps(cfg))
        assert fr._encode(d, text) == want, cls
