"""lm-eval through our in-process llama.cpp LM and through lm-eval's HFLM."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from slim.errors import SlimError

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "data/lm_eval/slim_facts/slim_facts.yaml"


class _Req:
    def __init__(self, *args):
        self.args = args


@pytest.fixture(scope="module")
def smol_lm(smol_rt):
    from slim.lmeval.llamacpp_lm import LlamaCppLM
    return LlamaCppLM(runtime=smol_rt)


def test_task_data_shipped():
    rows = [json.loads(line) for line in (TASK.parent / "slim_facts.jsonl").read_text().splitlines()]
    assert len(rows) >= 40
    for r in rows:
        assert len(r["choices"]) == 4 and 0 <= r["answer"] < 4 and r["question"].endswith("?")


def test_registered():
    from lm_eval.api.registry import get_model

    from slim.lmeval.llamacpp_lm import LlamaCppLM
    assert get_model("slim-llamacpp") is LlamaCppLM


def test_loglikelihood_matches_runtime(smol_lm, smol_rt):
    (lp, greedy), (lp2, _) = smol_lm.loglikelihood(
        [_Req("The capital of France is", " Paris"), _Req("The capital of France is", " Berlin")],
        disable_tqdm=True)
    assert lp > lp2 and lp < 0
    ctx = smol_rt.tokenize("The capital of France is", True)
    cont = smol_rt.tokenize("The capital of France is Paris", True)[len(ctx):]
    rows = smol_rt.logprobs(ctx + cont[:-1])
    expected = sum(float(rows[len(ctx) - 1 + i, t]) for i, t in enumerate(cont))
    assert math.isclose(lp, expected, abs_tol=1e-4)
    assert greedy is True  # " Paris" is the model's greedy continuation


def test_loglikelihood_empty_context(smol_lm):
    [(lp, _)] = smol_lm.loglikelihood([_Req("", "Hello")], disable_tqdm=True)
    assert lp < 0 and np.isfinite(lp)


def test_loglikelihood_rolling_equals_window_sum(smol_lm, smol_rt):
    text = "Water boils at one hundred degrees Celsius at sea level."
    [total] = smol_lm.loglikelihood_rolling([_Req(text)], disable_tqdm=True)
    ids = [smol_lm.prefix_token_id] + smol_rt.tokenize(text, True)
    rows = smol_rt.logprobs(ids[:-1])
    assert math.isclose(total, float(rows[np.arange(len(ids) - 1), ids[1:]].sum()), abs_tol=1e-3)


def test_loglikelihood_rolling_long_text_uses_windows(smol_rt, smollm_gguf):
    from slim.lmeval.llamacpp_lm import LlamaCppLM
    from slim.runtimes.llamacpp import LlamaCppRuntime
    text = "The quick brown fox jumps over the lazy dog. " * 6
    with LlamaCppRuntime(smollm_gguf, n_ctx=32, threads=1) as small:
        [windowed] = LlamaCppLM(runtime=small).loglikelihood_rolling([_Req(text)], disable_tqdm=True)
    [whole] = LlamaCppLM(runtime=smol_rt).loglikelihood_rolling([_Req(text)], disable_tqdm=True)
    assert windowed < 0 and whole < 0
    assert windowed < whole  # less context per prediction costs likelihood


def test_generate_until_stops(smol_lm):
    [a, b] = smol_lm.generate_until(
        [_Req("Q: What is the capital of France?\nA:", {"until": ["\n"], "max_gen_toks": 16}),
         _Req("1, 2, 3,", {"until": [","], "max_gen_toks": 8, "do_sample": False})],
        disable_tqdm=True)
    assert "\n" not in a and "Paris" in a
    assert "," not in b and b.strip() == "4"


def test_run_lm_eval_gguf_slim_facts(smollm_gguf, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the task's relative data path must still resolve
    from slim.lmeval.run import run_lm_eval
    res = run_lm_eval(str(smollm_gguf), [str(TASK)], limit=8, threads=1)
    assert 0.0 <= res["slim_facts"]["acc"] <= 1.0
    assert 0.0 <= res["slim_facts"]["acc_norm"] <= 1.0
    assert res["slim_facts"]["acc_stderr"] >= 0
    meta = res["_meta"]
    assert meta["model_kind"] == "llama.cpp" and meta["limit"] == 8
    assert meta["n_samples"]["slim_facts"] == 8 and meta["lm_eval_version"] == "0.4.13"
    assert [s["doc_id"] for s in res["_samples"]["slim_facts"]] == list(range(8))
    assert np.mean([s["acc"] for s in res["_samples"]["slim_facts"]]) == res["slim_facts"]["acc"]


def test_run_lm_eval_hf_folder(tiny_hf):
    from slim.lmeval.run import run_lm_eval
    res = run_lm_eval(str(tiny_hf), [str(TASK.parent)], limit=4, threads=1)
    assert 0.0 <= res["slim_facts"]["acc"] <= 1.0
    assert res["_meta"]["model_kind"] == "transformers"
    assert res["_meta"]["n_samples"]["slim_facts"] == 4


def test_same_answers_in_both_runtimes(tiny_hf, tiny_gguf):
    """lm-eval's HFLM and our llama.cpp LM score the same model the same way."""
    from slim.lmeval.run import run_lm_eval
    a = run_lm_eval(str(tiny_hf), [str(TASK)], limit=12, threads=1)
    b = run_lm_eval(str(tiny_gguf), [str(TASK)], limit=12, threads=1)
    assert a["_samples"] == b["_samples"]


def test_relative_task_path_from_repo_root(smollm_gguf, monkeypatch):
    monkeypatch.chdir(ROOT)
    from slim.lmeval.run import run_lm_eval
    res = run_lm_eval(str(smollm_gguf), ["data/lm_eval/slim_facts/slim_facts.yaml"], limit=2,
                      threads=1)
    assert res["_meta"]["n_samples"]["slim_facts"] == 2


def test_unknown_task_and_missing_file(smollm_gguf, tmp_path):
    from slim.lmeval.run import run_lm_eval
    with pytest.raises(SlimError, match="nope.yaml"):
        run_lm_eval(str(smollm_gguf), [str(tmp_path / "nope.yaml")], limit=1)
    bad = tmp_path / "t.yaml"
    bad.write_text("task: t\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                   "    test: missing.jsonl\noutput_type: multiple_choice\n")
    with pytest.raises(SlimError, match="missing.jsonl"):
        run_lm_eval(str(smollm_gguf), [str(bad)], limit=1)
    with pytest.raises(SlimError, match="model file"):
        run_lm_eval(str(tmp_path / "x.gguf"), [str(TASK)], limit=1)


def test_offline_by_default():
    import slim  # noqa: F401
    assert os.environ.get("HF_DATASETS_OFFLINE") == "1"


def test_prefix_reuse_matches_fresh(smol_rt):
    ctx = smol_rt.tokenize("Question: What is the capital of Japan?\nAnswer:", True)
    for choice in (" Tokyo", " Seoul", " Beijing"):
        cont = smol_rt.tokenize(choice, False)
        fresh = smol_rt.logprobs(ctx + cont).copy()
        smol_rt.logits(ctx + [cont[0]], reuse_prefix=False)
        reused = smol_rt.logits(ctx + cont, reuse_prefix=True)
        from slim.runtimes import log_softmax
        np.testing.assert_allclose(log_softmax(reused), fresh, atol=1e-3)
