"""The imatrix step on the tiny model: the fp32 path equals a naive per-module hook
computation (so sharing one x² sum between q/k/v and gate/up changes nothing), and the
default bf16-autocast path stays within a small relative error of it."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np

from tests.runtimes.conftest import THREADS


def _run(tmp_path, tiny_hf, tiny_gguf, tokens, **params):
    from slim.steps import imatrix

    (tmp_path / "cal").mkdir(exist_ok=True)
    np.save(tmp_path / "cal" / "tokens.npy", tokens)
    f16 = tmp_path / "f16"
    f16.mkdir(exist_ok=True)
    if not (f16 / "model.gguf").exists():
        (f16 / "model.gguf").symlink_to(tiny_gguf)
    out = tmp_path / ("out_" + params.get("dtype", "default"))
    out.mkdir()
    ctx = SimpleNamespace(params=imatrix.Params(**params), out=out, threads=THREADS,
                          inputs={"calibration": tmp_path / "cal", "model": tiny_hf, "f16": f16},
                          progress=lambda it, **k: it, log=lambda *a, **k: None)
    imatrix.run(ctx)
    return dict(np.load(out / "imatrix.npz")), json.loads((out / "imatrix.json").read_text())


def _naive(tiny_hf, tiny_gguf, tokens):
    """Mean x² per input column of every mapped linear, one hook per module, fp32."""
    import torch

    from slim.models.gguf_header import read_gguf_header
    from slim.models.hf_io import load_causal_lm
    from slim.steps.gguf_names import hf_to_gguf_names

    model = load_causal_lm(tiny_hf, "float32").eval()
    kv, tensors = read_gguf_header(tiny_gguf, keys=("general.architecture",))
    names = hf_to_gguf_names(model, {t.name: t for t in tensors}, kv["general.architecture"])
    sums: dict[str, list] = {}
    for mod, g in names.items():
        def hook(m, args, _g=g):
            x = args[0].reshape(-1, args[0].shape[-1]).double()
            s = sums.setdefault(_g, [0.0, 0])
            s[0] = s[0] + (x * x).sum(0)
            s[1] += x.shape[0]
        model.get_submodule(mod).register_forward_pre_hook(hook)
    with torch.no_grad():
        for w in tokens:
            model(torch.from_numpy(w[None].astype(np.int64)))
    return {g: (s / n).numpy() for g, (s, n) in sums.items()}


def test_imatrix_paths(tmp_path, tiny_hf, tiny_gguf):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 2000, (6, 64)).astype(np.int32)
    want = _naive(tiny_hf, tiny_gguf, tokens)
    fp32, meta = _run(tmp_path, tiny_hf, tiny_gguf, tokens, dtype="float32", batch_size=4)
    assert meta["dtype"] == "float32" and set(fp32) == set(want)
    assert any(k.endswith("attn_k.weight") for k in want)  # shared q/k/v input is covered
    for g in want:
        np.testing.assert_allclose(fp32[g], want[g], rtol=2e-5, err_msg=g)
    bf16, meta = _run(tmp_path, tiny_hf, tiny_gguf, tokens)
    assert meta["dtype"] == "bfloat16" and set(bf16) == set(want)
    rel = np.concatenate([np.abs(bf16[g] / fp32[g] - 1) for g in want])
    assert np.median(rel) < 0.01 and rel.max() < 0.1, (np.median(rel), rel.max())


def test_16bit_source_loads_16bit_linears_with_identical_imatrix(tmp_path, tiny_hf, tiny_gguf):
    """A 16-bit source keeps its linear weights 16-bit in the bf16 path (half the memory of a
    float32 copy) and gives bit-identical statistics: autocast rounds either copy to the same
    bf16 values, and the embedding rows and norms are float32 in both (the 16-bit weights'
    pages are given back after each module: the second run re-reads them)."""
    import shutil

    import torch

    from slim.models.hf_io import load_causal_lm, save_16bit
    from slim.steps import imatrix

    src16 = tmp_path / "hf16"
    save_16bit(load_causal_lm(tiny_hf, "float32"), None, src16, "float16")
    for f in tiny_hf.iterdir():
        if f.name.startswith("tokenizer") or f.name == "special_tokens_map.json":
            shutil.copy(f, src16 / f.name)
    m = imatrix._load(src16, "bfloat16", load_causal_lm)
    lin = [mod.weight.dtype for mod in m.modules() if isinstance(mod, torch.nn.Linear)]
    other = [p.dtype for mod in m.modules()
             if not isinstance(mod, (torch.nn.Linear, torch.nn.Embedding))
             for p in mod.parameters(recurse=False)]
    assert set(lin) <= {torch.float16, torch.float32} and torch.float16 in lin
    assert set(other) == {torch.float32}
    # the embedding table stays 16-bit too and returns the float32 copy's rows (issue 16)
    assert m.model.embed_tokens.weight.dtype == torch.float16
    ids = torch.tensor([[1, 5, 99]])
    assert m.model.embed_tokens(ids).dtype == torch.float32
    assert torch.equal(m.model.embed_tokens(ids), m.model.embed_tokens.weight[ids].float())
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, 2000, (4, 64)).astype(np.int32)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    new, _ = _run(tmp_path / "a", src16, tiny_gguf, tokens)
    orig = imatrix._load
    try:
        imatrix._load = lambda s, d, load: load(s, "float32")
        old, _ = _run(tmp_path / "b", src16, tiny_gguf, tokens)
    finally:
        imatrix._load = orig
    assert set(new) == set(old)
    assert all(np.array_equal(new[k], old[k]) for k in old)
