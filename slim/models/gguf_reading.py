"""Parse a GGUF file once per import, however many times transformers asks.

Why: transformers' GGUF loading (``from_pretrained(gguf_file=...)``) builds a
``gguf.GGUFReader`` for the config and again for the tensors, ``AutoConfig`` a third
time, and rebuilds gguf-py's tensor-name map once per tensor. On the default model's
94 MiB file that was 14.6 s of parsing (each parse walks the 49k-token vocabulary and
merges field by field) and 6.3 s of name maps, of a 23 s import step. Inside
:func:`memoized_gguf`, readers are shared per path and name maps per
``(architecture, blocks)``; both are read-only, so sharing them changes no result.
"""
from __future__ import annotations

import contextlib
import functools


@contextlib.contextmanager
def memoized_gguf():
    import gguf

    real_reader, real_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict = {}

    def reader(path, mode="r"):
        key = (str(path), mode)
        if key not in readers:
            readers[key] = real_reader(path, mode)
        return readers[key]

    gguf.GGUFReader = reader
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(real_map)
    try:
        yield reader
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = real_reader, real_map
        readers.clear()
