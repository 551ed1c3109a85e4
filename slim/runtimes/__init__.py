"""Model runtimes behind one small interface: llama.cpp (GGUF), transformers (HF folder) and
onnxruntime-genai (ONNX folder with genai_config.json).

    from slim.runtimes import open_runtime
    with open_runtime("model.gguf", n_ctx=512) as rt:
        lp = rt.logprobs(rt.tokenize("Hello world", add_bos=True))
        print(rt.chat([{"role": "user", "content": "Hi"}], max_tokens=32))

Backends import lazily (torch and llama_cpp load only when a model of that kind opens).
"""
from __future__ import annotations

from pathlib import Path

from slim.runtimes.base import Runtime, log_softmax, runtime_kind

__all__ = ["Runtime", "open_runtime", "runtime_kind", "log_softmax", "RUNTIME_LIBS"]

#: libraries whose versions a step's output depends on when it runs a model in that runtime
#: beyond the step's own LIBS (steps add them to their cache key through ``extra_libs``)
RUNTIME_LIBS = {"onnxruntime-genai": ("onnxruntime-genai", "onnxruntime")}


def open_runtime(path: str | Path, *, n_ctx: int = 2048, threads: int | None = None,
                 seed: int = 0, dtype: str = "float32", **kwargs) -> Runtime:
    """Load ``path`` with the runtime its format needs.

    A ``.gguf`` file opens in llama.cpp; a directory with ``genai_config.json`` in
    onnxruntime-genai; a directory with ``config.json`` opens in transformers (``dtype``
    applies there; float32 by default).
    """
    kind = runtime_kind(path)
    if kind == "onnxruntime-genai":
        from slim.runtimes.ort import OrtGenaiRuntime
        return OrtGenaiRuntime(path, n_ctx=n_ctx, threads=threads, seed=seed)
    if kind == "llama.cpp":
        from slim.runtimes.llamacpp import LlamaCppRuntime
        return LlamaCppRuntime(path, n_ctx=n_ctx, threads=threads, seed=seed, **kwargs)
    from slim.runtimes.hf import HFRuntime
    return HFRuntime(path, n_ctx=n_ctx, threads=threads, seed=seed, dtype=dtype, **kwargs)
