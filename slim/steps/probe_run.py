"""Greedy answers of one model to the shipped probe items, checked programmatically."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

VERSION = 1
LIBS = ("llama-cpp-python", "torch", "transformers")


@dataclass
class Params:
    categories: list = field(default_factory=list)
    max_items: Optional[int] = None
    max_tokens: int = 64
    runtime: str = "llama.cpp"
    model_file: str = ""


def run(ctx):
    import os

    from slim.probes.suite import load_items, run_items
    from slim.runtimes import open_runtime

    p = ctx.params
    items = load_items(list(p.categories), p.max_items, data_dir=ctx.inputs["probe_data"])
    model = ctx.inputs["model"] / p.model_file if p.model_file else ctx.inputs["model"]
    with open_runtime(str(model), n_ctx=2048, threads=ctx.threads) as rt:
        results = run_items(rt.chat, items, p.max_tokens,
                            progress=os.environ.get("SLIM_NO_PROGRESS") != "1")
        runtime = rt.name
    ctx.write_json("probes.json", {"runtime": runtime, "max_tokens": p.max_tokens,
                                   "decoding": "greedy", "results": results})
