"""A 16-bit folder in the transformers runtime: weights stay 16-bit, each module computes in
float32 (slim.models.upcast), and the results equal a float32 copy of the same weights."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest


def _recast(src: Path, out: Path, dtype: str) -> Path:
    import torch
    from safetensors.torch import load_file, save_file
    out.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name.endswith(".safetensors"):
            t = {k: v.to(getattr(torch, dtype)) for k, v in load_file(f).items()}
            save_file(t, out / f.name, metadata={"format": "pt"})
        elif f.is_file():
            shutil.copyfile(f, out / f.name)
    cfg = json.loads((out / "config.json").read_text())
    cfg["dtype"] = dtype
    (out / "config.json").write_text(json.dumps(cfg))
    return out


@pytest.fixture(scope="module")
def bf16_pair(tiny_hf, tmp_path_factory):
    """The tiny model rounded to bf16, saved as bf16 and as float32 (the same values)."""
    base = tmp_path_factory.mktemp("upcast")
    b16 = _recast(tiny_hf, base / "bf16", "bfloat16")
    f32 = _recast(b16, base / "f32", "float32")
    return b16, f32


def test_bf16_folder_keeps_16bit_weights_and_float32_results(bf16_pair):
    import torch

    from slim.runtimes.hf import HFRuntime
    b16, f32 = bf16_pair
    a = HFRuntime(b16, n_ctx=256, threads=1)
    b = HFRuntime(f32, n_ctx=256, threads=1)
    assert a.storage_dtype == "bfloat16" and b.storage_dtype == "float32"
    assert {p.dtype for p in a.model.parameters()} == {torch.bfloat16}
    ids = a.tokenize("The quick brown fox jumps over the lazy dog, twice.", add_bos=True)
    la, lb = a.logprobs(ids), b.logprobs(ids)
    np.testing.assert_array_equal(la, lb)           # bit-identical: every op ran in float32
    assert a._upcast.calls > 0
    # the weights are 16-bit again after the call, with the loaded bits
    assert {p.dtype for p in a.model.parameters()} == {torch.bfloat16}
    msgs = [{"role": "user", "content": "Say something."}]
    assert a.chat(msgs, max_tokens=8) == b.chat(msgs, max_tokens=8)


def test_float32_copy_on_request(bf16_pair):
    import torch

    from slim.runtimes.hf import HFRuntime
    rt = HFRuntime(bf16_pair[0], n_ctx=256, threads=1, float32_copy=True)
    assert rt.storage_dtype == "float32" and rt._upcast is None
    assert {p.dtype for p in rt.model.parameters()} == {torch.float32}


def test_dtype_bfloat16_computes_in_bf16(bf16_pair):
    import torch

    from slim.runtimes.hf import HFRuntime
    rt = HFRuntime(bf16_pair[0], n_ctx=256, threads=1, dtype="bfloat16")
    assert rt.storage_dtype == "bfloat16" and rt._upcast is None
    assert next(rt.model.parameters()).dtype == torch.bfloat16


def test_storage_dtype_rule():
    from slim.models.upcast import storage_dtype
    assert storage_dtype("bfloat16", "float32") == "bfloat16"
    assert storage_dtype("float16", "float32") == "float16"
    assert storage_dtype("float32", "float32") == "float32"
    assert storage_dtype(None, "float32") == "float32"      # compressed-tensors / mixed
    assert storage_dtype("bfloat16", "float16") == "float16"


def test_lazy_blocks_stay_wide_until_the_next_block():
    import torch

    from slim.models.upcast import Float32Compute
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 8), torch.nn.Linear(8, 4))
    net.to(torch.bfloat16)
    want = torch.nn.Sequential(*[torch.nn.Linear(8, 8), torch.nn.Linear(8, 8),
                                 torch.nn.Linear(8, 4)])
    want.load_state_dict({k: v.float() for k, v in net.state_dict().items()})
    x = torch.randn(3, 8)
    up = Float32Compute(net, blocks=[net[0], net[1]])
    with torch.no_grad():
        y = net(x)
    assert net[1].weight.dtype == torch.float32           # the last block entered stays wide
    assert net[0].weight.dtype == torch.bfloat16          # narrowed when block 1 was entered
    assert net[2].weight.dtype == torch.bfloat16          # per call: narrowed after its forward
    up.remove()
    assert {p.dtype for p in net.parameters()} == {torch.bfloat16}
    with torch.no_grad():
        assert torch.equal(y, want(x))


def test_lm_eval_hflm_on_bf16_folder_equals_float32_copy(bf16_pair):
    import torch

    from slim.lmeval.run import hf_lm

    class _Req:
        def __init__(self, *args):
            self.args = args
    reqs = [_Req("The capital of France is", " Paris"), _Req("One, two,", " three"),
            _Req("Hello", " world and everyone in it")]
    a, b = hf_lm(bf16_pair[0]), hf_lm(bf16_pair[1])
    assert {p.dtype for p in a.model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in b.model.parameters()} == {torch.float32}
    assert a.loglikelihood(reqs, disable_tqdm=True) == b.loglikelihood(reqs, disable_tqdm=True)
