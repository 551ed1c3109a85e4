"""The held-out evaluation windows of a parent: token ids only, no log-probabilities.

Tokens come from the parent's HF tokenizer so every runtime sees the same ids.

Why no stored reference log-probs (issue 15). Version 1 stored the parent's
float16 log-probs over the full vocabulary for every scored token: 383 MiB per
reference for SmolLM2-135M (49,152 × 4,080 tokens × 2 bytes), two references per
parent, and tens of GB for a 128k-vocabulary model on a wikitext-sized corpus.
The fidelity step (:mod:`slim.steps.fidelity_compare`) now evaluates the parent
and the child window by window and computes the statistics exactly, so this step
keeps only what both sides must share: the windows (a few hundred KB).

The compact alternative, top-k parent log-probs + the tail mass (KLD over the top
k plus one merged tail bucket; by the data-processing inequality a lower bound
whose error is P_tail × KL of the two tail distributions), was measured on the
default model (Q4_K_M vs its F16 parent, 16 × 512 windows, full-vocabulary KLD
0.03196): k = 256 (4.2 MB) underestimates mean KLD by 8.5 %, k = 512 (8.4 MB) by
5.3 %, k = 1024 (16.7 MB) by 3.1 % (mean tail mass 1.8 %: a 135M model's
next-token distributions are flat). Nothing within the 20 MB budget reaches the
1 % agreement llama-perplexity comparisons need, and the error has no useful
a-priori bound (it depends on the child's tail). Recomputing the parent costs one
more forward pass per child (llama.cpp F16: ~1× the child's eval time for the
default model; numbers in docs/evaluation_speed.md) and is exact; even the float16
rounding of the stored rows is gone (it was larger than the 2.5e-6 nats
cross-runtime noise floor it had to measure).
"""
from __future__ import annotations

from dataclasses import dataclass

VERSION = 2
LIBS = ("transformers", "numpy")   # tokenizers comes with transformers


@dataclass
class Params:
    n_ctx: int = 512
    chunks: int = 8


#: tokenizer classes that are the tokenizer.json's Rust tokenizer with no Python logic of their
#: own: their ids are ``tokenizers.Tokenizer.from_file(tokenizer.json)``'s (tested)
_PLAIN_FAST = ("TokenizersBackend", "PreTrainedTokenizerFast")


def _encode(tokenizer_dir, text: str) -> list[int]:
    """``text``'s ids without special tokens, as ``AutoTokenizer`` gives them. A plain fast
    tokenizer is read with the ``tokenizers`` library directly: the same ids without importing
    transformers' tokenizer stack (3.5 s of CPU of a ~5 s step, issue 15's time ratio)."""
    import json
    from pathlib import Path
    d = Path(tokenizer_dir)
    try:
        cls = json.loads((d / "tokenizer_config.json").read_text()).get("tokenizer_class")
    except (OSError, ValueError):
        cls = None
    if cls in _PLAIN_FAST and (d / "tokenizer.json").is_file():
        from tokenizers import Tokenizer
        return Tokenizer.from_file(str(d / "tokenizer.json")).encode(
            text, add_special_tokens=False).ids
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(d))
    tok.model_max_length = 1 << 30  # the corpus is cut into windows below, not fed whole
    return tok(text, add_special_tokens=False)["input_ids"]


def memory(params, model: dict) -> dict:
    """A tokenizer only, no weights (measured 0.53 GiB at every size, docs/scaling.md §8)."""
    from slim.steps.base import LIGHT_BASE
    return {"ram": LIGHT_BASE, "why": "the parent's tokenizer only, no weights"}


def eval_tokens(tokenizer_dir, corpus, n_ctx: int, chunks: int):
    import numpy as np

    from slim.errors import SlimError
    ids = _encode(tokenizer_dir, open(corpus, encoding="utf-8").read())
    if len(ids) < n_ctx * chunks:
        raise SlimError(f"eval corpus {corpus} has {len(ids)} tokens; probes.fidelity needs "
                        f"chunks × n_ctx = {chunks} × {n_ctx} = {chunks * n_ctx}; lower "
                        f"probes.fidelity.chunks or n_ctx", "eval_corpus_too_small")
    return np.asarray(ids[: n_ctx * chunks], dtype=np.int32).reshape(chunks, n_ctx)


def run(ctx):
    import numpy as np

    from slim.metrics.fidelity import scored_positions

    p = ctx.params
    tokens = eval_tokens(ctx.inputs["tokenizer"], ctx.inputs["corpus"], p.n_ctx, p.chunks)
    a, b = scored_positions(p.n_ctx)
    np.save(ctx.out / "tokens.npy", tokens)
    ctx.write_json("reference.json", {"n_ctx": p.n_ctx, "chunks": p.chunks,
                                      "scored_rows": [a, b], "tokens_scored": int((b - a) * p.chunks),
                                      "storage": "token ids only; the fidelity step evaluates "
                                                 "parent and child window by window"})
