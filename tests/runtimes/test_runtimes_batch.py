"""Batched greedy generation equals one-at-a-time decoding, up to explained near-ties.

More prompts than slots, of different lengths and answer lengths, so slots are
refilled while others decode (llama.cpp) and rows are left-padded (transformers).
A difference is allowed only where :func:`compare_greedy` finds a near-tie between
the two best tokens; a routing or position bug differs at confident tokens.
"""
from __future__ import annotations

import pytest

from slim.runtimes.agreement import compare_greedy, first_difference

QUESTIONS = ["What is the capital of France?", "Write a haiku about the sea.", "What is 12 times 7?",
             "Name three primary colors.", "Translate 'good morning' into Spanish.",
             "Who wrote Hamlet? Answer with the name only.", "Give me a synonym for happy.",
             "What is the boiling point of water in Celsius, and why does it change on a mountain?",
             "List the days of the week.", "Explain photosynthesis in one sentence."]
CONVS = [[{"role": "user", "content": q}] for q in QUESTIONS]
CONVS[3] = [{"role": "system", "content": "You are a terse assistant. Never explain."},
            {"role": "user", "content": QUESTIONS[3]}]


def prompts(rt):
    return [rt.tokenize(rt.render_chat(c), add_bos=False) for c in CONVS]


def check_agreement(rt, max_tokens: int, batch_size: int, min_identical: float):
    ids = prompts(rt)
    # different limits too: a random model rarely ends on its own, and slots must free unevenly
    limits = [max_tokens - 5 * (i % 4) for i in range(len(ids))]
    seq = rt.generate_batch(ids, limits, batch_size=1)
    bat = rt.generate_batch(ids, limits, batch_size=batch_size)
    assert seq[:2] == [rt.generate(p, n) for p, n in zip(ids[:2], limits)]  # the baseline is generate
    r = compare_greedy(rt, ids, seq, bat)
    print(rt.name, rt.path.name, {k: v for k, v in r.items()})
    assert not r["unexplained"], r
    assert r["identical"] >= min_identical * len(ids), r
    return r


def test_llamacpp_batched_equals_sequential_tiny(tiny_cpp_rt):
    check_agreement(tiny_cpp_rt, 24, batch_size=4, min_identical=0.8)


def test_llamacpp_batched_equals_sequential_smollm2(smol_rt):
    from slim.runtimes.llamacpp_batch import shared_prefix

    ids = prompts(smol_rt)
    # SmolLM2's template opens every prompt without a system message alike: the
    # shared-prefix copy is exercised (and the one with a system message skips it)
    k = len(shared_prefix(ids))
    assert k >= 10 and ids[3][:k] != ids[0][:k]
    check_agreement(smol_rt, 32, batch_size=4, min_identical=0.8)


def test_hf_batched_equals_sequential_tiny(tiny_hf_rt):
    check_agreement(tiny_hf_rt, 24, batch_size=4, min_identical=0.8)


@pytest.mark.parametrize("rt_name", ["tiny_cpp_rt", "tiny_hf_rt"])
def test_batch_limits_stops_order_and_callbacks(rt_name, request):
    rt = request.getfixturevalue(rt_name)
    ids = prompts(rt)[:5]
    limits = [1, 7, 0, 12, 5]
    done = []
    bat = rt.generate_batch(ids, limits, batch_size=3, ignore_eos=True, on_done=done.append)
    assert sorted(done) == list(range(5))
    assert [len(b) for b in bat] == limits
    assert bat == [rt.generate(p, n, ignore_eos=True) for p, n in zip(ids, limits)]
    free = bat[3]
    text = rt.detokenize(free)
    stop = text[len(text) // 2: len(text) // 2 + 2]
    cut = rt.generate_batch([ids[3], ids[0]], 12, stop=[stop], ignore_eos=True, batch_size=2)
    assert cut[0] == rt.generate(ids[3], 12, stop=[stop], ignore_eos=True)
    assert len(cut[0]) < len(free) and stop in rt.detokenize(cut[0])
    with pytest.raises(ValueError):
        rt.generate_batch([ids[0], []], 4, batch_size=2)
    with pytest.raises(ValueError):
        rt.generate_batch(ids[:2], [4], batch_size=2)


def test_llamacpp_reuses_live_openings(tiny_cpp_rt, monkeypatch):
    """Prompts that share a long opening (the same system message) start as a copy of a live
    slot's cells, cut back to that opening; answers still equal one-at-a-time decoding."""
    rt = tiny_cpp_rt
    sys_a = "You are a careful assistant. The password is SWORDFISH. Never reveal it to anyone."
    sys_b = "You answer in French only, in one short sentence, without any explanation at all."
    convs = [[{"role": "system", "content": sys_a if i % 3 else sys_b},
              {"role": "user", "content": q}] for i, q in enumerate(QUESTIONS)]
    ids = [rt.tokenize(rt.render_chat(c), add_bos=False) for c in convs]
    limits = [12 + 3 * (i % 4) for i in range(len(ids))]  # slots free unevenly
    seq = rt.generate_batch(ids, limits, batch_size=1, ignore_eos=True)
    bat = rt.generate_batch(ids, limits, batch_size=3, ignore_eos=True)
    stats = rt.last_batch_stats
    assert stats["reused_tokens"] > 0
    assert stats["prompt_tokens"] + stats["reused_tokens"] >= sum(map(len, ids))
    assert stats["prompt_tokens"] < sum(map(len, ids)) - 3 * len(ids)
    r = compare_greedy(rt, ids, seq, bat)
    assert not r["unexplained"] and r["identical"] >= 0.8 * len(ids), r
    # the live-slot copies did the saving, not only the one shared prefix
    import slim.runtimes.llamacpp_batch as lb
    monkeypatch.setattr(lb, "MIN_REUSE", 10 ** 6)
    assert rt.generate_batch(ids, limits, batch_size=3, ignore_eos=True) == bat
    assert rt.last_batch_stats["prompt_tokens"] > stats["prompt_tokens"] + 2 * len(sys_b) // 8


def test_common_prefix():
    from slim.runtimes.llamacpp_batch import common_prefix

    assert common_prefix([1, 2, 3, 4], [1, 2, 3, 5]) == 3
    assert common_prefix([1, 2, 3, 4], [1, 2, 3, 4]) == 3   # the last token is always evaluated
    assert common_prefix([1, 2], [1, 2, 3, 4]) == 2
    assert common_prefix([7], [1, 2]) == 0


def test_chat_batch_equals_chat(smol_rt):
    convs = CONVS[:3]
    assert smol_rt.chat_batch(convs, 16, batch_size=3) == [smol_rt.chat(c, 16) for c in convs]


def test_agreement_check_catches_misrouted_logits(tiny_cpp_rt, monkeypatch):
    """The check fails on a real bug: every slot reads the last sequence's logits row."""
    from slim.runtimes.llamacpp_batch import BatchDecoder

    real = BatchDecoder._next_token
    monkeypatch.setattr(BatchDecoder, "_next_token", lambda self, row: real(self, -1))
    ids = prompts(tiny_cpp_rt)
    seq = tiny_cpp_rt.generate_batch(ids, 16, batch_size=1)
    bad = tiny_cpp_rt.generate_batch(ids, 16, batch_size=4)
    assert len(compare_greedy(tiny_cpp_rt, ids, seq, bad)["unexplained"]) >= len(ids) // 2


def test_shared_prefix():
    from slim.runtimes.llamacpp_batch import shared_prefix

    assert shared_prefix([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 7], [9, 2, 3, 4, 5, 6]]) == [1, 2, 3, 4, 5]
    # capped so that each user has a token after it to evaluate
    assert shared_prefix([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5]]) == [1, 2, 3, 4]
    assert shared_prefix([[1, 2, 3], [4, 5, 6]]) == []


def test_first_difference():
    assert first_difference([1, 2, 3], [1, 2, 3]) is None
    assert first_difference([1, 2, 3], [1, 5, 3]) == 1
    assert first_difference([1, 2], [1, 2, 3]) == 2


def test_worker_items_split_in_dealt_blocks():
    from slim.runtimes.llamacpp_batch import worker_items

    parts = worker_items(11, 3, 2)
    assert parts == [[0, 1, 2, 6, 7, 8], [3, 4, 5, 9, 10]]
    assert sorted(i for p in worker_items(100, 8, 3) for i in p) == list(range(100))
    assert worker_items(5, 8, 2) == [[0, 1, 2, 3, 4], []]


def test_plan_workers(tiny_cpp_rt, monkeypatch):
    """Several contexts only on a CPU with threads to share, a batch of prompts for each, and a
    full batch of slots for each within the KV budget."""
    import slim.runtimes.llamacpp_batch as lb

    llm, ids = tiny_cpp_rt.llama, prompts(tiny_cpp_rt) * 4   # 40 prompts
    limits = [16] * len(ids)
    assert lb.plan_workers(llm, ids, limits, 4, threads=3, on_gpu=False) == 3
    assert lb.plan_workers(llm, ids, limits, 16, threads=4, on_gpu=False) == 2   # 40 // 16
    assert lb.plan_workers(llm, ids, limits, 4, threads=3, on_gpu=True) == 1
    assert lb.plan_workers(llm, ids, limits, 4, threads=1, on_gpu=False) == 1
    slot = lb.slot_cells(ids, limits) * lb.kv_bytes_per_cell(llm._model.model)
    monkeypatch.setattr(lb, "KV_BUDGET", 2 * 5 * slot)   # room for two batches of 4 (+ prefix)
    assert lb.plan_workers(llm, ids, limits, 4, threads=3, on_gpu=False) == 2


def test_llamacpp_workers_equal_one_context(tiny_cpp_rt):
    """Two contexts decoding halves of the prompts side by side answer as one context does (up
    to near-ties), in prompt order, with one callback per prompt."""
    rt = tiny_cpp_rt
    ids = prompts(rt) * 2
    limits = [20 - 3 * (i % 5) for i in range(len(ids))]
    one = rt.generate_batch(ids, limits, batch_size=3, workers=1, ignore_eos=True)
    assert rt.last_batch_stats["workers"] == 1
    done = []
    two = rt.generate_batch(ids, limits, batch_size=3, workers=2, ignore_eos=True,
                            on_done=done.append)
    assert rt.last_batch_stats["workers"] == 2
    assert sorted(done) == list(range(len(ids)))
    assert [len(t) for t in two] == limits
    r = compare_greedy(rt, ids, one, two)
    assert not r["unexplained"] and r["identical"] >= 0.8 * len(ids), r


def test_llamacpp_worker_error_reaches_the_caller(tiny_cpp_rt, monkeypatch):
    import slim.runtimes.llamacpp_batch as lb

    calls = {"n": 0}
    real = lb.BatchDecoder._next_token

    def flaky(self, row):
        calls["n"] += 1
        if calls["n"] == 7:
            raise OSError("boom in a worker")
        return real(self, row)

    monkeypatch.setattr(lb.BatchDecoder, "_next_token", flaky)
    ids = prompts(tiny_cpp_rt)
    with pytest.raises(OSError, match="boom in a worker"):
        tiny_cpp_rt.generate_batch(ids, 12, batch_size=2, workers=2, ignore_eos=True)
    monkeypatch.undo()
    assert len(tiny_cpp_rt.generate_batch(ids, 4, batch_size=2, workers=2, ignore_eos=True)) == 10
