"""How far batched greedy answers agree with one-at-a-time ones, and why they differ.

Batched decoding feeds each token through kernels that process many rows at
once; they sum in another order and, for quantized weights, llama.cpp's
multi-row kernels round differently from its one-row ones (on the default
Q4_K_M child, top log-probs differ by up to ~0.4 nats between the two; on F16 by
~0.01). A token whose two best candidates are that close can flip, and the
answers part from there on. A bug (a token routed to the wrong sequence, wrong
positions) also makes answers differ, but at tokens the model is sure of.

So each differing answer is judged at its first differing token ``d``, after the
common prefix: ``seq`` = the log-probs one-at-a-time decoding saw there
(:meth:`Runtime.decode_logprobs`), ``multi`` = the same position scored in one
pass over the whole window (multi-row kernels). The flip is *explained* when the
batched choice is among the two best of ``multi`` and trails the one-at-a-time
choice in ``seq`` by no more than ``tol`` plus twice the two evaluations' own
disagreement there (an answer that ended chose its best end-of-generation token).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index of the first token where ``a`` and ``b`` differ (one ending counts); None if equal."""
    if list(a) == list(b):
        return None
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def _choice(seq: Sequence[int], d: int, lp: np.ndarray, eog: frozenset[int]) -> int:
    if d < len(seq):
        return int(seq[d])
    return max(eog, key=lambda t: lp[t]) if eog else -1


def judge_flip(rt, prompt: Sequence[int], ref: Sequence[int], cand: Sequence[int], d: int,
               tol: float = 0.05) -> dict:
    """Evidence at the first differing token ``d``: is the flip a near-tie or a bug?"""
    ctx = list(ref[:d])
    seq = rt.decode_logprobs(prompt, ctx)
    multi = rt.logprobs(list(prompt) + ctx)[-1].astype(np.float64)
    r, c = _choice(ref, d, seq, rt.eog_ids), _choice(cand, d, multi, rt.eog_ids)
    top = set(np.argsort(seq)[-5:]) | set(np.argsort(multi)[-5:])
    noise = float(max(abs(seq[t] - multi[t]) for t in top))
    gap = float(seq[r] - seq[c]) if c >= 0 else float("inf")
    ok = c in set(int(t) for t in np.argsort(multi)[-2:]) and gap <= tol + 2 * noise
    return {"at": d, "gap": round(gap, 4), "noise": round(noise, 4), "explained": bool(ok),
            "reference": list(ref[d:d + 3]), "candidate": list(cand[d:d + 3])}


def compare_greedy(rt, prompts: Sequence[Sequence[int]], reference: Sequence[Sequence[int]],
                   candidate: Sequence[Sequence[int]], tol: float = 0.05) -> dict:
    """Agreement of ``candidate`` (batched) answers with ``reference`` (one-at-a-time) ones.

    Returns ``{"items", "identical", "explained", "unexplained": [evidence...],
    "flips": [evidence...]}``; a correct batched decoder has no unexplained items.
    """
    flips, unexplained = [], []
    for i, (p, ref, cand) in enumerate(zip(prompts, reference, candidate)):
        d = first_difference(ref, cand)
        if d is None:
            continue
        ev = {"index": i, **judge_flip(rt, p, ref, cand, d, tol)}
        (flips if ev["explained"] else unexplained).append(ev)
    n = len(prompts)
    return {"items": n, "identical": n - len(flips) - len(unexplained), "explained": len(flips),
            "unexplained": unexplained, "flips": flips}
