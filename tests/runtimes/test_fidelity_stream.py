"""Fidelity without a stored reference: the windows step keeps token ids only, and the
fidelity step's per-token statistics (parent and child evaluated window by window)
equal an independent full-vocabulary computation from each runtime's log-probs."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from tests.runtimes.conftest import THREADS

ROOT = Path(__file__).resolve().parents[2]


def _ctx(kind, params, inputs, out):
    import importlib

    mod = importlib.import_module(f"slim.steps.{kind}")
    out.mkdir(parents=True, exist_ok=True)

    def write_json(name, obj):
        (out / name).write_text(json.dumps(obj))

    return mod, SimpleNamespace(params=mod.Params(**params), inputs=inputs, out=out,
                                threads=THREADS, progress=lambda it, **k: it,
                                write_json=write_json, log=lambda *a, **k: None)


def test_window_stats_matches_numpy_token_stats():
    from slim.metrics.fidelity import token_stats, window_stats
    rng = np.random.default_rng(0)
    p = rng.normal(0, 3, (40, 300)).astype(np.float32)
    q = p + rng.normal(0, 0.5, p.shape).astype(np.float32)
    q[7] = p[7]                                   # one identical row: KLD 0, same top-1
    tgt = rng.integers(0, 300, 40)
    q[8] = p[8] + rng.normal(0, 1e-3, 300).astype(np.float32)  # noise-floor-sized KLD (~1e-7)
    a, b = token_stats(p, q, tgt), window_stats(p, q, tgt)
    for k in a:   # same inputs: float64 both ways
        np.testing.assert_allclose(b[k], a[k], rtol=1e-9, atol=1e-13, err_msg=k)
    assert b["kld"][7] < 1e-12 and b["top1"][7] == 1.0 and b["kld"].mean() > 0.05
    assert 1e-8 < a["kld"][8] < 1e-5 and abs(b["kld"][8] / a["kld"][8] - 1) < 1e-3


def _close(got, want):
    """Tolerances for logits from different llama.cpp calls (rows-only vs all rows: the
    last layer's matmuls differ in shape, so float32 logits differ in the last bits)."""
    tol = {"kld": (1e-3, 1e-10), "nll_parent": (0, 2e-5), "nll_child": (0, 2e-5),
           "delta_p": (0, 1e-6), "top1": (0, 0)}
    for k, (rtol, atol) in tol.items():
        np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol, err_msg=k)


def _windows(tmp_path, tiny_hf, n_ctx=64, chunks=3):
    mod, ctx = _ctx("fidelity_reference", {"n_ctx": n_ctx, "chunks": chunks},
                    {"tokenizer": tiny_hf, "corpus": ROOT / "data/eval/heldout.txt"},
                    tmp_path / "ref")
    mod.run(ctx)
    return ctx.out


def test_reference_keeps_tokens_only(tmp_path, tiny_hf):
    ref = _windows(tmp_path, tiny_hf)
    assert sorted(p.name for p in ref.iterdir()) == ["reference.json", "tokens.npy"]
    assert np.load(ref / "tokens.npy").shape == (3, 64)
    assert json.loads((ref / "reference.json").read_text())["scored_rows"] == [32, 63]


def test_fidelity_step_matches_full_vocabulary(tmp_path, tiny_hf, tiny_gguf, tiny_hf_rt, tiny_cpp_rt):
    """Noise-floor shape: the HF parent in torch vs its GGUF in llama.cpp, in one step."""
    from slim.metrics.fidelity import scored_positions, token_stats
    ref = _windows(tmp_path, tiny_hf)
    mod, ctx = _ctx("fidelity_compare",
                    {"runtime": "llama.cpp", "model_file": tiny_gguf.name, "parent_file": "",
                     "flash_attn": False},   # as the independent runtimes below run
                    {"reference": ref, "parent": tiny_hf, "model": tiny_gguf.parent},
                    tmp_path / "fid")
    mod.run(ctx)
    got = np.load(ctx.out / "per_token.npz")
    summary = json.loads((ctx.out / "fidelity.json").read_text())
    assert summary["runtime_parent"] == "transformers" and summary["runtime_child"] == "llama.cpp"
    tokens = np.load(ref / "tokens.npy")
    a, b = scored_positions(64)
    want: dict[str, list] = {}
    for w in tokens:
        s = token_stats(tiny_hf_rt.logprobs(w.tolist())[a:b], tiny_cpp_rt.logprobs(w.tolist())[a:b],
                        w[a + 1:b + 1])
        for k, v in s.items():
            want.setdefault(k, []).append(v)
    _close(got, {k: np.concatenate(v) for k, v in want.items()})
    assert summary["tokens"] == 3 * 31 and 0 < summary["kld_mean"] < 1e-3


def test_same_model_both_sides_is_zero(tmp_path, tiny_hf, tiny_gguf):
    ref = _windows(tmp_path, tiny_hf, chunks=2)
    mod, ctx = _ctx("fidelity_compare",
                    {"runtime": "llama.cpp", "model_file": tiny_gguf.name,
                     "parent_file": tiny_gguf.name},
                    {"reference": ref, "parent": tiny_gguf.parent, "model": tiny_gguf.parent},
                    tmp_path / "fid")
    mod.run(ctx)
    s = json.loads((ctx.out / "fidelity.json").read_text())
    assert s["kld_max"] < 1e-9 and s["top1_agreement"] == 1.0 and s["ppl_ratio"] == 1.0


def test_logits_rows_equal_full_logits(tiny_cpp_rt):
    """Asking llama.cpp for the scored rows only gives the rows of a full evaluation."""
    rng = np.random.default_rng(1)
    w = rng.integers(0, 2000, 96).tolist()
    full = np.array(tiny_cpp_rt.logits(w))
    rows = tiny_cpp_rt.logits_rows(w, 48, 95)
    assert rows.shape == (47, full.shape[1])
    np.testing.assert_allclose(rows, full[48:95], rtol=1e-5, atol=1e-5)
    # the runtime is usable afterwards (a fresh evaluation, not a reused KV cache)
    np.testing.assert_allclose(np.array(tiny_cpp_rt.logits(w))[48:95], rows, rtol=1e-5, atol=1e-5)
