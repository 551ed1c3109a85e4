"""Child vs parent on the reference's windows: PPL ratio, KLD, top-1, Δp.

Parent and child are evaluated here and the statistics are computed from both sides' raw
logits in vectorised torch float64 (:func:`slim.metrics.fidelity.window_stats`); no
full-vocabulary array is written to the cache (why: :mod:`slim.steps.fidelity_reference`).
Definitions follow ``llama-perplexity --kl-divergence``: rows n_ctx/2 … n_ctx−2 of each window
are scored (each predicts the next token with at least n_ctx/2 tokens of context);
KLD = Σ p_parent (log p_parent − log p_child).

Bounded memory (issue 16): the models are never resident together. The parent runs first over
every window and its scored rows' float32 logits go to a scratch file outside the cache
(``SLIM_SCRATCH_DIR``, else the system's temp dir; chunks × n_ctx/2 × vocab × 4 bytes, deleted
when the step ends); it is closed, then the child runs and each window's statistics are
computed from its rows and the parent's rows read back — the same float32 numbers as when
both were open at once, so the statistics are unchanged. A transformers parent (the noise
floor: the HF parent in torch vs its F16 GGUF in llama.cpp) runs in a process of its own
(torch's and transformers' ~0.5 GiB never sit beside the GGUF), keeps its 16-bit weights and
computes in float32 (:mod:`slim.runtimes.torch_lowmem`: the float32 model's numbers, about one
layer's weights resident), with only the scored rows through the LM head. The step's peak
RSS is its own or that process's, whichever is larger (``RUSAGE_CHILDREN``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

VERSION = 4
LIBS = ("llama-cpp-python", "torch", "transformers", "numpy")


@dataclass
class Params:
    runtime: str = "llama.cpp"
    model_file: str = ""
    parent_file: str = ""
    # llama.cpp side: flash attention, as llama-perplexity runs by default (auto: on for CPU)
    flash_attn: bool = True
    # the child's KV cache type as deployed (kv_cache=): other than f16, a second child runtime
    # with that K and V cache type (flash attention on: llama.cpp needs it for a quantized V
    # cache) is measured beside the f16-KV child, against the parent and against the f16-KV child
    # (in the key only when set: keys of f16 steps are those from before the field existed)
    kv_cache: str = field(default="f16", metadata={"key": "when_set"})

    def validate(self):
        from slim.hardware.fit import KV_CACHE_CHOICES
        if str(self.kv_cache).lower() not in KV_CACHE_CHOICES:
            return [("kv_cache", f"{self.kv_cache!r} is not one of {', '.join(KV_CACHE_CHOICES)}")]
        if str(self.kv_cache).lower() != "f16" and self.runtime != "llama.cpp":
            return [("kv_cache", f"a {self.kv_cache} KV cache is measured in llama.cpp only "
                                 f"(runtime {self.runtime})")]
        return []


def extra_libs(params: dict) -> tuple:
    """Libraries of the runtime a model runs in beyond LIBS (onnxruntime-genai for an ONNX
    model), in the key only when that runtime is used: other keys are unchanged."""
    from slim.runtimes import RUNTIME_LIBS
    return RUNTIME_LIBS.get(params.get("runtime"), ())


def _rows(rt, window, a: int, b: int):
    """Raw float32 logits of rows [a, b) of one window (a copy: runtimes reuse their buffers)."""
    import numpy as np
    if hasattr(rt, "logits_rows"):
        return rt.logits_rows(window, a, b)
    if hasattr(rt, "logits"):
        return np.array(rt.logits(window)[a:b], dtype=np.float32)
    return np.array(rt.logprobs(window)[a:b], dtype=np.float32)


def _open(path, n_ctx: int, threads: int, flash_attn: bool, **kw):
    """A runtime for ``path`` (llama.cpp: with flash attention when asked, as llama-perplexity)."""
    from slim.runtimes import open_runtime, runtime_kind
    if flash_attn and runtime_kind(path) == "llama.cpp":
        kw = {"flash_attn": True, **kw}
    return open_runtime(str(path), n_ctx=n_ctx, threads=threads, **kw)


def _torch_parent(folder, tokens_file, a: int, b: int, spill, n_ctx: int, threads: int) -> dict:
    """A transformers parent's rows written into ``spill`` by a process of its own
    (``python -m slim.runtimes.torch_lowmem``: 16-bit weights, float32 math, pages given
    back), so torch's and transformers' memory never adds to the llama.cpp child's here."""
    import json
    import os
    import subprocess
    import sys

    from slim.errors import SlimError
    from slim.steps.base import note_device
    spill.close()
    r = subprocess.run([sys.executable, "-m", "slim.runtimes.torch_lowmem", str(folder),
                        str(tokens_file), str(a), str(b), str(spill.path), str(n_ctx),
                        str(threads)], capture_output=True, text=True, env=dict(os.environ))
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-12:]
        if any("SlimError" in line for line in tail):
            raise SlimError(tail[-1].split("SlimError:", 1)[-1].strip(), "model_load_failed")
        raise RuntimeError("the transformers parent's process failed:\n" + "\n".join(tail))
    res = json.loads(open(str(spill.path) + ".json").read())
    spill.shape = (b - a, int(res["vocab"]))
    for d in res.get("devices") or []:
        note_device(d)
    return res


class _Spill:
    """Per-window float32 row blocks in a scratch file outside the cache, written in window
    order and read back one window at a time (never mapped: the pages are the page cache's,
    not the step's resident memory)."""

    def __init__(self, folder, name: str):
        self.path = folder / f"{name}.f32"
        self.shape = None    # (rows, vocab) of the first window; every window the same
        self._f = open(self.path, "wb")

    def put(self, rows) -> None:
        import numpy as np
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        self.shape = self.shape or rows.shape
        if rows.shape != self.shape:
            raise ValueError(f"rows {rows.shape} differ from {self.shape} (different vocabularies?)")
        self._f.write(rows.data)

    def get(self, c: int):
        import numpy as np
        if not self._f.closed:
            self._f.close()
        count = self.shape[0] * self.shape[1]
        return np.fromfile(self.path, dtype=np.float32, count=count,
                           offset=c * count * 4).reshape(self.shape)

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def _scratch(need: int):
    """A temporary folder outside the cache with ``need`` bytes free, or SlimError."""
    import os
    import shutil
    import tempfile

    from slim.errors import SlimError
    base = os.environ.get("SLIM_SCRATCH_DIR") or tempfile.gettempdir()
    try:
        free = shutil.disk_usage(base).free
    except OSError as e:
        raise SlimError(f"SLIM_SCRATCH_DIR {base}: {e.strerror}; point it at a writable folder",
                        "scratch_missing") from None
    if free < need + (256 << 20):
        raise SlimError(f"the fidelity step needs {need / 2**30:.2f} GiB of scratch space for the "
                        f"parent's scored logits; {base} has {free / 2**30:.2f} GiB free: set "
                        f"SLIM_SCRATCH_DIR to a folder with room, or lower probes.fidelity.chunks",
                        "scratch_full")
    return tempfile.TemporaryDirectory(prefix="slim-fidelity-", dir=base)


def _evaluate(rt, tokens, a: int, b: int, spill, progress, desc: str) -> float:
    """Rows [a, b) of every window of ``rt`` into ``spill``; the seconds it took."""
    import time
    t = 0.0
    for c in progress(range(len(tokens)), desc=desc):
        t0 = time.perf_counter()
        rows = _rows(rt, tokens[c].tolist(), a, b)
        t += time.perf_counter() - t0
        spill.put(rows)
    return t


def memory(params, model: dict) -> dict:
    """One model at a time: the larger is the parent's 16-bit weights (2 bytes/param) in
    llama.cpp, or its transformers copy with about one layer resident (in its own process);
    plus torch for the statistics and a window's rows."""
    from slim.steps.base import TORCH_BASE
    n = int(model.get("params") or 0)
    return {"ram": 2 * n + TORCH_BASE,
            "why": "parent then child, never together: the parent's 16-bit weights (2 bytes/"
                   "param) and the step's torch"}


def run(ctx):
    import gc
    import json
    import time

    import numpy as np
    import torch  # window_stats' torch, imported before the timers

    # the statistics on the step's threads (torch's default is every core: its OpenMP workers
    # then contend with llama.cpp's on small blocks, 5x the CPU time measured at threads=1)
    torch.set_num_threads(max(1, int(ctx.threads or 1)))

    from slim.metrics.fidelity import scored_positions, summarise, window_stats
    from slim.runtimes import runtime_kind

    ref_dir = ctx.inputs["reference"]
    meta = json.loads((ref_dir / "reference.json").read_text())
    tokens = np.load(ref_dir / "tokens.npy")
    n_ctx = meta["n_ctx"]
    a, b = scored_positions(n_ctx)
    p = ctx.params
    model = ctx.inputs["model"] / p.model_file if p.model_file else ctx.inputs["model"]
    parent = ctx.inputs["parent"] / p.parent_file if p.parent_file else ctx.inputs["parent"]
    parts: dict[str, list] = {}
    secs = {"parent": 0.0, "child": 0.0, "stats": 0.0}
    kv = str(p.kv_cache).lower()
    kv_parts: dict[str, dict[str, list]] = {"vs_parent": {}, "vs_f16_kv": {}}
    targets = [tokens[c, a + 1:b + 1] for c in range(len(tokens))]

    def opened(path, **kw):
        return _open(path, n_ctx, ctx.threads, p.flash_attn, **kw)

    torch_parent = runtime_kind(parent) == "transformers"
    if torch_parent:   # run below in its own process; the vocabulary from its config
        prt, vocab = None, int(json.loads((parent / "config.json").read_text())["vocab_size"])
    else:
        prt = opened(parent)
        vocab = int(prt.vocab_size)
    tmp = _scratch(len(tokens) * (b - a) * vocab * 4 * (2 if kv != "f16" else 1))
    with tmp as folder:
        from pathlib import Path
        folder = Path(folder)
        # 1. the parent alone: its scored rows to the scratch file, then closed
        pspill = _Spill(folder, "parent")
        if torch_parent:
            res = _torch_parent(parent, ref_dir / "tokens.npy", a, b, pspill, n_ctx, ctx.threads)
            secs["parent"], runtime_parent = res["seconds"], res["runtime"]
        else:
            try:
                with prt:
                    secs["parent"] = _evaluate(prt, tokens, a, b, pspill, ctx.progress,
                                               f"fidelity parent ({prt.name})")
                    runtime_parent = prt.name
            finally:
                pspill.close()
            del prt
            gc.collect()
        # 2. the child alone, each window's statistics against the parent's rows
        cspill = _Spill(folder, "child") if kv != "f16" else None
        with opened(model) as rt:
            for c in ctx.progress(range(len(tokens)), desc=f"fidelity child ({rt.name})"):
                t0 = time.perf_counter()
                ql = _rows(rt, tokens[c].tolist(), a, b)
                t1 = time.perf_counter()
                s = window_stats(pspill.get(c), ql, targets[c])
                secs["child"] += t1 - t0
                secs["stats"] += time.perf_counter() - t1
                for k, v in s.items():
                    parts.setdefault(k, []).append(v)
                if cspill is not None:
                    cspill.put(ql)
            runtime = rt.name
        # 3. with a quantized KV cache: that child alone, against the parent and the f16-KV child
        if cspill is not None:
            cspill.close()
            import llama_cpp
            t = getattr(llama_cpp, f"GGML_TYPE_{kv.upper()}")
            with _open(model, n_ctx, ctx.threads, True, type_k=t, type_v=t) as krt:
                for c in ctx.progress(range(len(tokens)), desc=f"fidelity child ({kv} KV)"):
                    t3 = time.perf_counter()
                    kl = _rows(krt, tokens[c].tolist(), a, b)
                    secs["child_kv"] = secs.get("child_kv", 0.0) + time.perf_counter() - t3
                    for base, ref in (("vs_parent", pspill), ("vs_f16_kv", cspill)):
                        for k, v in window_stats(ref.get(c), kl, targets[c]).items():
                            kv_parts[base].setdefault(k, []).append(v)
    stats = {k: np.concatenate(v) for k, v in parts.items()}
    np.savez_compressed(ctx.out / "per_token.npz", **stats)
    summary = summarise(stats)
    summary.update({"runtime_child": runtime, "runtime_parent": runtime_parent, "n_ctx": n_ctx,
                    "chunks": int(len(tokens)),
                    "method": "llama-perplexity --kl-divergence: second half of each window "
                              "scored; KLD = Σ p_parent (log p_parent − log p_child); parent "
                              "and child evaluated window by window in one step"})
    if kv != "f16":
        kvs = {base: {k: np.concatenate(v) for k, v in d.items()} for base, d in kv_parts.items()}
        np.savez_compressed(ctx.out / "per_token_kv.npz",
                            **{f"{base}_{k}": v for base, d in kvs.items() for k, v in d.items()})
        summary["kv_cache"] = {
            "type": kv, "flash_attn": True,
            "vs_parent": summarise(kvs["vs_parent"]),
            "vs_f16_kv": summarise(kvs["vs_f16_kv"]),
            "method": f"the child again with a {kv} K and V cache (llama.cpp type_k/type_v, flash "
                      f"attention), same windows: vs_parent = parent (f16 KV) ‖ child ({kv} KV), "
                      f"the build as deployed; vs_f16_kv = child (f16 KV) ‖ child ({kv} KV), "
                      f"the KV cache's own cost"}
    ctx.write_json("fidelity.json", summary)
    ctx.write_json("timing.json", {k: round(v, 3) for k, v in secs.items()})
