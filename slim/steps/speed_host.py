"""Prompt and generation tokens/s of an artifact on this host (keyed by host and threads)."""
from __future__ import annotations

from dataclasses import dataclass, field

VERSION = 2  # 2: measured without OpenMP passive waiting (v1 understated llama.cpp at threads > 1)
LIBS = ("llama-cpp-python", "torch", "transformers")


@dataclass
class Params:
    model_file: str = ""
    runtime: str = "llama.cpp"
    host: dict = field(default_factory=dict)
    prompt_tokens: int = 128
    gen_tokens: int = 64
    threads: int = 0          # the build's thread count: speed depends on it, so it is keyed


def extra_libs(params: dict) -> tuple:
    """Libraries of the runtime a model runs in beyond LIBS (onnxruntime-genai for an ONNX
    model), in the key only when that runtime is used: other keys are unchanged."""
    from slim.runtimes import RUNTIME_LIBS
    return RUNTIME_LIBS.get(params.get("runtime"), ())



def memory(params, model: dict) -> dict:
    from slim.steps.base import LIGHT_BASE, TORCH_BASE
    if params.runtime == "transformers":
        return {"ram": 4 * model["params"] + TORCH_BASE,
                "why": "the model in transformers, float32 (4 bytes/param)"}
    if params.runtime == "onnxruntime-genai":
        return {"ram": 4 * model["params"] + LIGHT_BASE,
                "why": "the ONNX model in onnxruntime-genai (≤ 4 bytes/param)"}
    return {"ram": 2 * model["params"] + LIGHT_BASE,
            "why": "the GGUF in llama.cpp (≤ 2 bytes/param)"}


def run(ctx):
    from slim.runtimes import open_runtime

    p = ctx.params
    model = ctx.inputs["model"] / p.model_file if p.model_file else ctx.inputs["model"]
    from slim.runtimes import runtime_kind
    # transformers: the float32 model as before (a 16-bit folder computed per module in float32
    # would time the per-token weight casts, 2-4x slower, not the model)
    kw = {"float32_copy": True} if runtime_kind(str(model)) == "transformers" else {}
    with open_runtime(str(model), n_ctx=max(512, p.prompt_tokens + p.gen_tokens + 8),
                      threads=ctx.threads, **kw) as rt:
        res = rt.speed(prompt_tokens=p.prompt_tokens, gen_tokens=p.gen_tokens)
    res["host"] = p.host
    res["threads"] = ctx.threads
    ctx.write_json("speed.json", res)
