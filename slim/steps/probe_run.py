"""Greedy answers of one model to the shipped probe items, checked programmatically.

Items are decoded ``batch_size`` sequences at a time (:meth:`Runtime.chat_batch`;
1 = one at a time). Batched answers equal one-at-a-time ones up to float
rounding, which can flip a near-tie; ``probes.json`` records how they were made
(``generation``: runtime, batch size, flash attention, seconds) so a report can say so.

llama.cpp runs with flash attention (``flash_attn``, on by default), as llama.cpp's
own tools do (their ``-fa auto`` resolves to enabled on CPU) and as the fidelity
step does: on the default model it cut the batched step's CPU time by ~15 % and
one-at-a-time decoding's by ~6 % (docs/probe_batching.md), with answers equal up
to near-ties. On a CPU a small model's batch is split over several contexts that
decode side by side, each on its share of the threads
(:func:`slim.runtimes.llamacpp_batch.plan_workers`; ``generation.contexts``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

VERSION = 3  # 2: batched generation (answers may differ from v1 at float near-ties); 3: flash attention
LIBS = ("llama-cpp-python", "torch", "transformers")


@dataclass
class Params:
    categories: list = field(default_factory=list)
    max_items: Optional[int] = None
    max_tokens: int = 64
    runtime: str = "llama.cpp"
    model_file: str = ""
    batch_size: int = 32      # sequences decoded together; 1 = one at a time (bench/eval.py)
    flash_attn: bool = True   # llama.cpp only: flash attention, as llama.cpp's tools run

    def validate(self):
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) \
                or self.batch_size < 1:
            return [("batch_size", f"must be a positive integer, got {self.batch_size!r}")]
        if not isinstance(self.flash_attn, bool):
            return [("flash_attn", f"must be true or false, got {self.flash_attn!r}")]
        return []


def extra_libs(params: dict) -> tuple:
    """Libraries of the runtime a model runs in beyond LIBS (onnxruntime-genai for an ONNX
    model), in the key only when that runtime is used: other keys are unchanged."""
    from slim.runtimes import RUNTIME_LIBS
    return RUNTIME_LIBS.get(params.get("runtime"), ())



def memory(params, model: dict) -> dict:
    """The model it answers with: at most the parent's 16-bit weights (a child is smaller),
    in llama.cpp with its KV cache for every sequence of a batch, or in transformers (the HF
    runtime's float32 default: 4 bytes/param)."""
    from slim.steps.base import LIGHT_BASE, TORCH_BASE, kv_cache_bytes
    if params.runtime == "transformers":
        return {"ram": 4 * model["params"] + TORCH_BASE,
                "why": "the model in transformers, float32 (4 bytes/param)"}
    kv = kv_cache_bytes(model, 2048)
    if params.runtime == "onnxruntime-genai":   # the parent's fp32 export is the largest
        return {"ram": 4 * model["params"] + 2 * kv + LIGHT_BASE,
                "why": "the ONNX model in onnxruntime-genai (≤ 4 bytes/param, fp32 parent "
                       "export) and its float32 KV cache"}
    if params.batch_size > 1:   # the batch context: 512 cells a slot (prompt + answer), capped
        from slim.runtimes.llamacpp_batch import KV_BUDGET
        kv += min(KV_BUDGET, kv_cache_bytes(model, 512 * (params.batch_size + 1)))
    return {"ram": 2 * model["params"] + kv + LIGHT_BASE,
            "why": "the GGUF in llama.cpp (≤ 2 bytes/param) and its KV caches (one sequence, "
                   "and the batch's slots)"}


def run(ctx):
    from slim.probes.suite import load_items, score_item
    from slim.runtimes import open_runtime, runtime_kind

    p = ctx.params
    items = load_items(list(p.categories), p.max_items, data_dir=ctx.inputs["probe_data"])
    model = ctx.inputs["model"] / p.model_file if p.model_file else ctx.inputs["model"]
    kw = {"flash_attn": p.flash_attn} if runtime_kind(model) == "llama.cpp" else {}
    with open_runtime(str(model), n_ctx=2048, threads=ctx.threads, **kw) as rt:
        t0 = time.perf_counter()
        with ctx.progress(total=len(items), desc="probes") as bar:
            outputs = rt.chat_batch([[dict(m) for m in it["messages"]] for it in items],
                                    p.max_tokens, batch_size=p.batch_size,
                                    on_done=lambda i: bar.update())
        seconds = time.perf_counter() - t0
        runtime = rt.name
        workers = (getattr(rt, "last_batch_stats", None) or {}).get("workers")
    results = [score_item(it, out) for it, out in zip(items, outputs)]
    ctx.write_json("probes.json", {
        "runtime": runtime, "max_tokens": p.max_tokens, "decoding": "greedy",
        "generation": {"runtime": runtime, "batch_size": p.batch_size,
                       "mode": "batched" if p.batch_size > 1 else "one at a time",
                       **({"flash_attn": p.flash_attn} if kw else {}),
                       **({"contexts": workers} if workers else {}),
                       "threads": ctx.threads, "items": len(items), "seconds": round(seconds, 2)},
        "results": results})
