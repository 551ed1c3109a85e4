"""Child vs parent on the reference's tokens: PPL ratio, KLD, top-1, Δp."""
from __future__ import annotations

from dataclasses import dataclass

VERSION = 1
LIBS = ("llama-cpp-python", "torch", "transformers", "numpy")


@dataclass
class Params:
    runtime: str = "llama.cpp"
    model_file: str = ""


def run(ctx):
    import json

    import numpy as np

    from slim.metrics.fidelity import scored_positions, summarise, token_stats
    from slim.runtimes import open_runtime

    ref_dir = ctx.inputs["reference"]
    meta = json.loads((ref_dir / "reference.json").read_text())
    tokens = np.load(ref_dir / "tokens.npy")
    ref_lp = np.load(ref_dir / "logprobs.npy", mmap_mode="r")
    ref_nll = np.load(ref_dir / "nll.npy")
    n_ctx = meta["n_ctx"]
    a, b = scored_positions(n_ctx)
    model = ctx.inputs["model"] / ctx.params.model_file if ctx.params.model_file \
        else ctx.inputs["model"]
    parts: dict[str, list] = {}
    with open_runtime(str(model), n_ctx=n_ctx, threads=ctx.threads) as rt:
        for c in ctx.progress(range(len(tokens)), desc=f"fidelity ({rt.name})"):
            q = rt.logprobs(tokens[c].tolist())[a:b]
            s = token_stats(np.asarray(ref_lp[c], dtype=np.float32), q, tokens[c, a + 1:b + 1])
            s["nll_parent"] = ref_nll[c].astype(np.float64)  # exact, not from float16 rows
            for k, v in s.items():
                parts.setdefault(k, []).append(v)
        runtime = rt.name
    stats = {k: np.concatenate(v) for k, v in parts.items()}
    np.savez_compressed(ctx.out / "per_token.npz", **stats)
    summary = summarise(stats)
    summary.update({"runtime_child": runtime, "runtime_parent": meta["runtime"], "n_ctx": n_ctx,
                    "chunks": int(len(tokens)),
                    "method": "llama-perplexity --kl-divergence: second half of each window "
                              "scored; KLD = Σ p_parent (log p_parent − log p_child)"})
    ctx.write_json("fidelity.json", summary)
