"""Float32 evaluation of an HF model whose weights stay 16-bit, in bounded memory (issue 16).

Two independent pieces, both leaving the numbers of a float32 forward unchanged:

- :func:`compute_float32` — **16-bit storage, float32 math**. Every ``nn.Linear`` and
  ``nn.Embedding`` keeps its 16-bit weight and upcasts it per call (``F.linear(x, W.float())``,
  ``F.embedding(ids, W).float()``): the float32 values a float32 copy would hold, the same
  kernels. Every other parameter (norms) and floating buffer (rotary ``inv_freq``) becomes
  float32, as a float32 load makes them. Linear layers with more than ``head_rows`` output
  rows (the LM head: 49k–128k rows) are upcast in row blocks, so no float32 copy of the head
  exists at once; their output equals the one-block product up to the GEMM's blocking.
- :func:`release_pages` — **weights given back after use**. transformers maps safetensors
  weights that are stored in the dtype they are loaded in straight from the file (mmap): they
  cost nothing until touched, but a forward pass touches them all and every touched page
  stays in the process's resident set. After each module with its own weights has run, its
  weight pages that lie inside a mapping of a ``.safetensors`` file (``/proc/self/maps``)
  and are still the file's own pages (none written since: ``/proc/self/pagemap``'s
  file-page bit; safetensors maps copy-on-write) are dropped with ``madvise(MADV_DONTNEED)``;
  the kernel maps them again from the page cache at the next use. Anything else (anonymous
  memory, a converted copy, a page written after loading) is left alone: DONTNEED would zero
  or revert it. The resident set is then about
  one layer's weights plus activations instead of the whole model.

Why own code: accelerate's disk offload (``device_map`` with ``"disk"``) moves weights
through an offload folder and its own hooks, and has no "compute in float32 over 16-bit
weights" mode; these ~100 lines keep transformers' own loading and forward, so the result
is the plain model's. Linux only for the page release (elsewhere it is a no-op and
:func:`release_pages` returns 0 bytes covered).
"""
from __future__ import annotations

import ctypes
import mmap
import os
import types

#: output rows above which a Linear is upcast in blocks of this many rows (the LM head)
HEAD_ROWS = 8192
_MADV_DONTNEED = 4


def _is_16bit(t) -> bool:
    import torch
    return t.dtype in (torch.float16, torch.bfloat16)


def float32_embedding(m) -> None:
    """``m`` (an ``nn.Embedding`` with a 16-bit weight) returns float32 rows: the rows of its
    float32 copy (a lookup, then an exact upcast), without that copy."""
    import torch
    import torch.nn.functional as F

    def embedding(self, ids):
        return F.embedding(ids, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse).to(torch.float32)
    m.forward = types.MethodType(embedding, m)


def compute_float32(model, head_rows: int = HEAD_ROWS):
    """Patch ``model`` in place to compute in float32 over its 16-bit Linear/Embedding weights."""
    import torch
    import torch.nn.functional as F

    def linear(self, x):
        w, b = self.weight, self.bias
        dt = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        x = x.to(dt)
        bias = None if b is None else b.to(dt)
        if w.shape[0] <= head_rows:
            return F.linear(x, w.to(dt), bias)
        return torch.cat([F.linear(x, w[i:i + head_rows].to(dt),
                                   None if bias is None else bias[i:i + head_rows])
                          for i in range(0, w.shape[0], head_rows)], dim=-1)

    for m in model.modules():
        if type(m) is torch.nn.Linear and _is_16bit(m.weight):
            m.forward = types.MethodType(linear, m)
        elif type(m) is torch.nn.Embedding and _is_16bit(m.weight):
            float32_embedding(m)
        elif isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
            continue   # a library's own subclass (packed/compressed weights): left as loaded
        else:
            for p in m.parameters(recurse=False):
                if p.is_floating_point() and p.dtype != torch.float32:
                    p.data = p.data.float()
        for name, b in m.named_buffers(recurse=False):
            if b is not None and b.is_floating_point() and b.dtype != torch.float32:
                setattr(m, name, b.float())
    return model


def _file_maps() -> list[tuple[int, int]]:
    """[start, end) of this process's mappings of ``*.safetensors`` files."""
    out = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) < 6 or not parts[5].strip().endswith(".safetensors"):
                    continue
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                out.append((lo, hi))
    except OSError:
        return []
    return out


def _unwritten(a: int, n: int, page: int) -> bool:
    """No page of [a, a+n) is present as an anonymous (written, copy-on-write) page."""
    import numpy as np
    try:
        with open("/proc/self/pagemap", "rb") as f:
            f.seek(a // page * 8)
            e = np.frombuffer(f.read(n // page * 8), dtype=np.uint64)
    except OSError:
        return False
    present, file_page = (e >> np.uint64(63)) & np.uint64(1), (e >> np.uint64(61)) & np.uint64(1)
    return len(e) == n // page and not bool(np.any((present == 1) & (file_page == 0)))


def release_pages(model) -> int:
    """After each module's forward, drop the pages of its own file-mapped weights (see the
    module docstring). Returns the bytes of weights covered (0: nothing file-mapped, or not
    Linux); the hooks stay for the model's life."""
    if not hasattr(os, "sysconf") or not os.path.exists("/proc/self/maps"):
        return 0
    maps = _file_maps()
    if not maps:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = mmap.PAGESIZE

    def ranges_of(mod):
        rs = []
        for p in mod.parameters(recurse=False):
            if p.device.type != "cpu" or p.numel() == 0:
                continue
            lo, n = p.data_ptr(), p.numel() * p.element_size()
            a, b = -(-lo // page) * page, (lo + n) // page * page  # whole pages inside p only
            if b > a and any(ms <= a and b <= me for ms, me in maps) \
                    and _unwritten(a, b - a, page):
                rs.append((a, b - a))
        return rs

    covered = 0
    for mod in model.modules():
        rs = ranges_of(mod)
        if not rs:
            continue
        covered += sum(n for _a, n in rs)

        def drop(_m, _args, _out, _rs=rs):
            for a, n in _rs:
                libc.madvise(a, n, _MADV_DONTNEED)
        mod.register_forward_hook(drop)
    return covered


def source_dtype(folder) -> str:
    """The dtype an HF folder's weights are stored in (config.json), "float32" when unknown."""
    import json
    from pathlib import Path
    try:
        cfg = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return "float32"
    dt = cfg.get("torch_dtype") or cfg.get("dtype") or "float32"
    return dt if dt in ("float16", "bfloat16", "float32") else "float32"


def scored_logits(model, tokens, a: int, b: int, device: str = "cpu"):
    """Float32 logits of rows [a, b) of one window (only those rows through the LM head)."""
    import numpy as np
    import torch
    ids = torch.tensor([list(tokens)], device=device)
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=False,
                    logits_to_keep=torch.arange(a, b, device=device)).logits[0]
    return np.ascontiguousarray(out.to(torch.float32).cpu().numpy())


def write_scored_rows(folder, tokens, a: int, b: int, out, n_ctx: int, threads: int) -> dict:
    """Rows [a, b) of every window of ``tokens`` ([chunks, n_ctx]) from the HF model in
    ``folder`` (16-bit weights, float32 math, pages given back), appended to the file ``out``
    as float32; returns ``{"vocab", "runtime", "devices", "seconds"}``."""
    import time

    from slim.runtimes import open_runtime
    from slim.steps.base import devices_used
    rt = open_runtime(str(folder), n_ctx=n_ctx, threads=threads, dtype=source_dtype(folder))
    with rt:
        compute_float32(rt.model)
        release_pages(rt.model)
        t, vocab = 0.0, None
        with open(out, "wb") as f:
            for w in tokens:
                t0 = time.perf_counter()
                rows = scored_logits(rt.model, w.tolist(), a, b, rt.device)
                t += time.perf_counter() - t0
                vocab = int(rows.shape[1])
                f.write(rows.data)
        return {"vocab": vocab, "runtime": rt.name, "devices": devices_used(), "seconds": t}


def main(argv=None) -> int:
    """``python -m slim.runtimes.torch_lowmem FOLDER TOKENS.npy A B OUT.f32 N_CTX THREADS``:
    :func:`write_scored_rows` in a process of its own (the fidelity step's transformers parent:
    torch's and transformers' own memory never enters the step's process), the result as JSON
    in ``OUT.f32.json``."""
    import json
    import sys

    import numpy as np
    folder, tokens, a, b, out, n_ctx, threads = (argv or sys.argv[1:])[:7]
    res = write_scored_rows(folder, np.load(tokens), int(a), int(b), out, int(n_ctx), int(threads))
    with open(out + ".json", "w") as f:
        json.dump(res, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
