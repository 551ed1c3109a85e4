"""Model runtimes behind one small interface: llama.cpp (GGUF) and transformers (HF folder).

    from slim.runtimes import open_runtime
    with open_runtime("model.gguf", n_ctx=512) as rt:
        lp = rt.logprobs(rt.tokenize("Hello world", add_bos=True))
        print(rt.chat([{"role": "user", "content": "Hi"}], max_tokens=32))

Backends import lazily (torch and llama_cpp load only when a model of that kind opens).
"""
from slim.runtimes.base import Runtime, log_softmax, open_runtime, runtime_kind

__all__ = ["Runtime", "open_runtime", "runtime_kind", "log_softmax"]
