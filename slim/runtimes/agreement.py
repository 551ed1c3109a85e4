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
pass over the whole window (multi-row kernels). Their largest disagreement over
the top tokens, taken over all differing answers, is the model's kernel noise
``sigma`` (a batched prompt is also split differently, prefix apart, which moves
even the first token by as much). A flip is *explained* when the batched choice
trails the best token by at most ``tol + 2 sigma`` in both evaluations (an answer
that ended chose its best end-of-generation token); a token from another
sequence's context or position trails by nats.
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


def judge_flip(rt, prompt: Sequence[int], ref: Sequence[int], cand: Sequence[int], d: int) -> dict:
    """Evidence at the first differing token ``d``: how far the batched choice trails."""
    ctx = list(ref[:d])
    seq = rt.decode_logprobs(prompt, ctx)
    multi = rt.logprobs(list(prompt) + ctx)[-1].astype(np.float64)
    r, c = _choice(ref, d, seq, rt.eog_ids), _choice(cand, d, multi, rt.eog_ids)
    top = set(np.argsort(seq)[-5:]) | set(np.argsort(multi)[-5:])
    noise = float(max(abs(seq[t] - multi[t]) for t in top))
    inf = float("inf")
    return {"at": d, "gap": round(float(seq[r] - seq[c]), 4) if c >= 0 else inf,
            "gap_one_pass": round(float(multi.max() - multi[c]), 4) if c >= 0 else inf,
            "noise": round(noise, 4), "reference": list(ref[d:d + 3]),
            "candidate": list(cand[d:d + 3])}


def compare_greedy(rt, prompts: Sequence[Sequence[int]], reference: Sequence[Sequence[int]],
                   candidate: Sequence[Sequence[int]], tol: float = 0.05) -> dict:
    """Agreement of ``candidate`` (batched) answers with ``reference`` (one-at-a-time) ones.

    Returns ``{"items", "identical", "explained", "sigma", "unexplained": [evidence...],
    "flips": [evidence...]}``; a correct batched decoder has no unexplained items.
    """
    evidence = []
    for i, (p, ref, cand) in enumerate(zip(prompts, reference, candidate)):
        d = first_difference(ref, cand)
        if d is not None:
            evidence.append({"index": i, **judge_flip(rt, p, ref, cand, d)})
    sigma = max((e["noise"] for e in evidence), default=0.0)
    bound = tol + 2 * sigma
    flips = [e for e in evidence if max(e["gap"], e["gap_one_pass"]) <= bound]
    unexplained = [e for e in evidence if max(e["gap"], e["gap_one_pass"]) > bound]
    n = len(prompts)
    return {"items": n, "identical": n - len(evidence), "explained": len(flips),
            "sigma": sigma, "bound": round(bound, 4), "unexplained": unexplained, "flips": flips}
