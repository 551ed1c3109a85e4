"""The parent's log-probabilities on the held-out corpus: computed once per parent.

Tokens come from the parent's HF tokenizer so every runtime sees the same ids.
Scored rows (second half of each window) are stored as float16 log-probs over
the full vocabulary; the exact target NLL is stored in float32 as well.
"""
from __future__ import annotations

from dataclasses import dataclass

VERSION = 1
LIBS = ("llama-cpp-python", "torch", "transformers", "numpy")


@dataclass
class Params:
    n_ctx: int = 512
    chunks: int = 8
    runtime: str = "llama.cpp"
    model_file: str = ""


def eval_tokens(tokenizer_dir, corpus, n_ctx: int, chunks: int):
    import numpy as np
    from transformers import AutoTokenizer

    from slim.errors import SlimError
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    tok.model_max_length = 1 << 30  # the corpus is cut into windows below, not fed whole
    ids = tok(open(corpus, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
    if len(ids) < n_ctx * chunks:
        raise SlimError(f"eval corpus {corpus} has {len(ids)} tokens; probes.fidelity needs "
                        f"chunks × n_ctx = {chunks} × {n_ctx} = {chunks * n_ctx}; lower "
                        f"probes.fidelity.chunks or n_ctx", "eval_corpus_too_small")
    return np.asarray(ids[: n_ctx * chunks], dtype=np.int32).reshape(chunks, n_ctx)


def run(ctx):
    import numpy as np

    from slim.metrics.fidelity import _log_normalise, scored_positions
    from slim.runtimes import open_runtime

    p = ctx.params
    tokens = eval_tokens(ctx.inputs["tokenizer"], ctx.inputs["corpus"], p.n_ctx, p.chunks)
    model = ctx.inputs["model"] / p.model_file if p.model_file else ctx.inputs["model"]
    a, b = scored_positions(p.n_ctx)
    lps, nll = [], []
    with open_runtime(str(model), n_ctx=p.n_ctx, threads=ctx.threads) as rt:
        for c in ctx.progress(range(p.chunks), desc=f"reference ({rt.name})"):
            lp = _log_normalise(rt.logprobs(tokens[c].tolist())[a:b])
            tgt = tokens[c, a + 1:b + 1]
            nll.append(-lp[np.arange(len(tgt)), tgt])
            lps.append(lp.astype(np.float16))
        runtime = rt.name
    np.save(ctx.out / "tokens.npy", tokens)
    np.save(ctx.out / "logprobs.npy", np.stack(lps))
    np.save(ctx.out / "nll.npy", np.stack(nll).astype(np.float32))
    ctx.write_json("reference.json", {"runtime": runtime, "n_ctx": p.n_ctx, "chunks": p.chunks,
                                      "scored_rows": [a, b], "tokens_scored": int((b - a) * p.chunks),
                                      "storage": "float16 log-probs over the full vocabulary"})
