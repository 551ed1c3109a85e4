"""llama-perplexity's KL-divergence statistics, computed from log-probabilities.

Per scored token: KLD = Σ p_base (log p_base − log q); "same top p" = argmax
agreement; Δp = q(correct) − p_base(correct). Only the second half of each
context window is scored (each token then has at least n_ctx/2 tokens of context).

:func:`window_stats` is what the fidelity step uses: the same statistics from raw
parent and child logits of one window, in vectorised torch float64 (no per-token
Python loop), so no full-vocabulary array needs to be stored between steps.
:func:`token_stats` (numpy, from log-probs) stays for callers that hold log-probs.
"""
from __future__ import annotations

import math

import numpy as np


def scored_positions(n_ctx: int) -> tuple[int, int]:
    """[start, stop) of logit rows scored in a window; row j predicts token j+1."""
    first = n_ctx // 2
    return first, n_ctx - 1


def _log_normalise(lp: np.ndarray) -> np.ndarray:
    lp = lp.astype(np.float64)
    m = lp.max(-1, keepdims=True)
    return lp - (m + np.log(np.exp(lp - m).sum(-1, keepdims=True)))


def token_stats(ref_lp: np.ndarray, child_lp: np.ndarray, targets: np.ndarray) -> dict:
    """Per-token arrays for rows of reference and child log-probs ([n, vocab]) and targets [n]."""
    p_lp = _log_normalise(ref_lp)
    q_lp = _log_normalise(child_lp)
    p = np.exp(p_lp)
    kld = (p * (p_lp - q_lp)).sum(-1)
    idx = np.arange(len(targets))
    return {
        "kld": np.maximum(kld, 0.0),
        "top1": (p_lp.argmax(-1) == q_lp.argmax(-1)).astype(np.float64),
        "delta_p": np.exp(q_lp[idx, targets]) - p[idx, targets],
        "nll_parent": -p_lp[idx, targets],
        "nll_child": -q_lp[idx, targets],
    }


#: rows per float64 block in :func:`window_stats`: 8 × vocab float64 temporaries stay in the
#: CPU's caches (8 × 49,152 × 8 B = 3 MiB) instead of streaming [rows, vocab] arrays through
#: RAM; 3× faster on one thread here, bit-identical to one block
BLOCK_ROWS = 8


def window_stats(parent_logits, child_logits, targets, block: int = BLOCK_ROWS) -> dict:
    """Per-token statistics of one window from raw logits ``[n, vocab]`` (numpy or torch) and
    targets ``[n]``, as :func:`token_stats` computes them (llama-perplexity's definitions).

    Float64 throughout, in few passes over the rows, ``block`` rows at a time: with logits z
    and log-normalisers L = logsumexp(z), KLD = Σ p (z_p − z_q) − (L_p − L_q). Float64 is
    needed: Σ p (z_p − z_q) is ~L_p − L_q (tens of nats) while the cross-runtime noise floor is
    ~1e-6 nats. (A float32 form, KLD = r + log1p(Σ p (expm1(−u) + u) − r) with u = d − Σ p d,
    needs float64 sums and a float64-normalised p to reach the same 1e-8 per token, and then
    costs 40 % more CPU.) Top-1 compares argmaxes of the float32 logits (the float64 upcast
    is exact, so the same indices)."""
    import torch

    def t32(x):
        return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))

    zp_all, zq_all = t32(parent_logits), t32(child_logits)
    if zp_all.shape != zq_all.shape:
        raise ValueError(f"parent rows {tuple(zp_all.shape)} and child rows "
                         f"{tuple(zq_all.shape)} differ (different vocabularies?)")
    n = zp_all.shape[0]
    tgt = torch.from_numpy(np.asarray(targets, dtype=np.int64)).view(-1, 1)
    top1 = (zp_all.argmax(-1) == zq_all.argmax(-1)).to(torch.float64)
    kld, lp_t, lq_t = (torch.empty(n, dtype=torch.float64) for _ in range(3))
    block, i = max(4, block), 0
    while i < n:
        j = n if n - i < block + 4 else i + block   # no block under 4 rows: einsum takes
        # another path for 1-2 rows (last-bit differences), so a short tail joins the block
        zp, zq = zp_all[i:j].to(torch.float64), zq_all[i:j].to(torch.float64)
        lp_norm, lq_norm = torch.logsumexp(zp, -1), torch.logsumexp(zq, -1)
        lp_t[i:j] = zp.gather(1, tgt[i:j])[:, 0] - lp_norm
        lq_t[i:j] = zq.gather(1, tgt[i:j])[:, 0] - lq_norm
        d = zp - zq
        p = zp.sub_(lp_norm[:, None]).exp_()          # zp is not needed any more
        kld[i:j] = torch.einsum("ij,ij->i", p, d) - (lp_norm - lq_norm)
        i = j
    return {
        "kld": kld.clamp_min(0.0).numpy(),
        "top1": top1.numpy(),
        "delta_p": (lq_t.exp() - lp_t.exp()).numpy(),
        "nll_parent": (-lp_t).numpy(),
        "nll_child": (-lq_t).numpy(),
    }


def summarise(stats: dict[str, np.ndarray]) -> dict:
    kld, top1, dp = stats["kld"], stats["top1"], stats["delta_p"]
    n = int(len(kld))
    if n == 0:
        raise ValueError("no tokens scored")
    nll_p, nll_c = stats["nll_parent"], stats["nll_child"]
    ppl_p, ppl_c = math.exp(nll_p.mean()), math.exp(nll_c.mean())
    # stderr of ln(PPL ratio) from the paired per-token log-ratio
    d = nll_c - nll_p
    return {
        "tokens": n,
        "ppl_parent": ppl_p,
        "ppl_child": ppl_c,
        "ppl_ratio": ppl_c / ppl_p,
        "ln_ppl_ratio_stderr": float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else None,
        "kld_mean": float(kld.mean()),
        "kld_mean_stderr": float(kld.std(ddof=1) / math.sqrt(n)) if n > 1 else None,
        "kld_median": float(np.percentile(kld, 50)),
        "kld_p99": float(np.percentile(kld, 99)),
        "kld_p999": float(np.percentile(kld, 99.9)),
        "kld_max": float(kld.max()),
        "top1_agreement": float(top1.mean()),
        "top1_agreement_stderr": float(math.sqrt(top1.mean() * (1 - top1.mean()) / n)),
        "delta_p_mean": float(dp.mean()),
        "delta_p_rms": float(math.sqrt((dp ** 2).mean())),
    }
