"""Model runtimes behind one small interface: llama.cpp (GGUF) and transformers (HF folder).

    from slim.runtimes import open_runtime
    with open_runtime("model.gguf", n_ctx=512) as rt:
        lp = rt.logprobs(rt.tokenize("Hello world", add_bos=True))
        print(rt.chat([{"role": "user", "content": "Hi"}], max_tokens=32))

Backends import lazily (torch and llama_cpp load only when a model of that kind opens).
"""
from __future__ import annotations

from pathlib import Path

from slim.runtimes.base import Runtime, log_softmax, runtime_kind

__all__ = ["Runtime", "open_runtime", "runtime_kind", "log_softmax"]


def open_runtime(path: str | Path, *, n_ctx: int = 2048, threads: int | None = None,
                 seed: int = 0, dtype: str = "float32", **kwargs) -> Runtime:
    """Load ``path`` with the runtime its format needs.

    A ``.gguf`` file opens in llama.cpp; a directory with ``config.json`` opens
    in transformers (``dtype`` applies there; float32 by default).
    """
    kind = runtime_kind(path)
    if kind == "llama.cpp":
        from slim.runtimes.llamacpp import LlamaCppRuntime
        return LlamaCppRuntime(path, n_ctx=n_ctx, threads=threads, seed=seed, **kwargs)
    from slim.runtimes.hf import HFRuntime
    return HFRuntime(path, n_ctx=n_ctx, threads=threads, seed=seed, dtype=dtype, **kwargs)
