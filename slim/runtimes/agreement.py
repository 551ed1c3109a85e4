"""How far batched greedy answers agree with one-at-a-time ones, and why they differ.

Batched decoding sums the same products in another order, so a token whose top
two logits are nearly tied can flip, and the answers part from there on. A bug
(a token routed to the wrong sequence, wrong positions) also makes answers
differ, but at confident tokens. So each differing answer is classified at its
first differing token by the margin there: the log-probability gap between the
two best tokens after the common prefix, scored by the runtime in one fresh pass.
A flip is *explained* when that gap is below ``tol`` and both answers chose one
of those two tokens (an answer that ended chose an end-of-generation token).
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


def compare_greedy(rt, prompts: Sequence[Sequence[int]], reference: Sequence[Sequence[int]],
                   candidate: Sequence[Sequence[int]], tol: float = 0.05) -> dict:
    """Agreement of ``candidate`` answers with ``reference`` ones to the same ``prompts``.

    Returns ``{"items", "identical", "explained", "unexplained": [{"index", "at", "margin",
    "reference", "candidate"}...]}``; a correct batched decoder has no unexplained items.
    """
    eog = rt.eog_ids
    unexplained, explained = [], 0
    for i, (p, ref, cand) in enumerate(zip(prompts, reference, candidate)):
        d = first_difference(ref, cand)
        if d is None:
            continue
        lp = rt.logprobs(list(p) + list(ref[:d]))[-1].astype(np.float64)
        top2 = np.argsort(lp)[-2:][::-1]
        margin = float(lp[top2[0]] - lp[top2[1]])
        best = {int(t) for t in top2}

        def chose_top2(seq):
            return (seq[d] in best) if d < len(seq) else bool(best & eog)

        if margin < tol and chose_top2(ref) and chose_top2(cand):
            explained += 1
        else:
            unexplained.append({"index": i, "at": d, "margin": round(margin, 4),
                                "reference": list(ref[d:d + 3]), "candidate": list(cand[d:d + 3])})
    n = len(prompts)
    return {"items": n, "identical": n - explained - len(unexplained), "explained": explained,
            "unexplained": unexplained}
