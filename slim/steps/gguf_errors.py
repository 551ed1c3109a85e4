"""Quantization error of every tensor of a 16-bit GGUF under every candidate type
(:mod:`slim.compress.gguf_error`: llama.cpp's own ``ggml_quantize_chunk`` with the importance
matrix, dequantized by ggml), for ``method=fit``'s allocator. Independent of the byte budget,
so one measurement serves every budget (cached by the F16 GGUF, the imatrix and the types).

Output ``errors.json``: ``{file_bytes, quantizable_f16_bytes, tensors: {name: {rows, cols,
signal, signal_plain, imatrix, sampled_rows, types: {T: {bytes, error, error_plain}}}}}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

VERSION = 2   # 2: unweighted error and signal beside the weighted ones
LIBS = ("llama-cpp-python", "llama.cpp-toolchain", "gguf", "numpy")


def _default_types():
    from slim.compress.gguf_error import default_candidates
    return default_candidates()


@dataclass
class Params:
    candidates: list = field(default_factory=_default_types)
    #: measure at most this many evenly spaced rows of a tensor (scaled to the whole); 0: all
    sample_rows: int = 256

    def validate(self):
        from slim.compress.gguf_error import candidate_errors
        errs = candidate_errors(self.candidates)
        if int(self.sample_rows) < 0:
            errs.append(("sample_rows", "must be ≥ 0 (0: every row)"))
        return errs


def memory(params, model: dict) -> dict:
    from slim.steps.base import LIGHT_BASE
    return {"ram": LIGHT_BASE + max(1 << 30, int(0.5 * (model.get("params") or 0))),
            "why": "the mapped 16-bit GGUF; up to 2 tensors per thread in float32 (the largest, "
                   "the embedding, is ~1/16 of an 8B model's parameters)"}


def run(ctx):
    import os
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from slim.compress.gguf_error import measure_tensor, read_f16_gguf
    p = ctx.params
    f16 = ctx.inputs["f16"] / "model.gguf"
    im = dict(np.load(ctx.inputs["imatrix"] / "imatrix.npz")) if "imatrix" in ctx.inputs else {}
    out, f16_bytes, pending = {}, 0, []
    workers = max(1, int(ctx.threads or 1))
    bar = ctx.progress(desc="error per tensor × type")

    def drain(keep: int):
        while len(pending) > keep:
            name, fut = pending.pop(0)
            out[name] = fut.result()
            bar.update(1)

    # ctypes releases the GIL: tensors measured in parallel, at most 2 per worker in memory
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for name, w, nbytes in read_f16_gguf(f16):
            f16_bytes += nbytes
            pending.append((name, pool.submit(measure_tensor, w, im.get(name),
                                              list(p.candidates), int(p.sample_rows) or None)))
            drain(2 * workers)
        drain(0)
    bar.close()
    ctx.write_json("errors.json", {"file_bytes": os.path.getsize(f16),
                                   "quantizable_f16_bytes": f16_bytes,
                                   "candidates": list(p.candidates),
                                   "sample_rows": int(p.sample_rows), "tensors": out})
