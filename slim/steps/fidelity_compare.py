"""Child vs parent on the reference's windows: PPL ratio, KLD, top-1, Δp.

Parent and child are evaluated here, window by window, and the statistics are
computed from both sides' raw logits in vectorised torch float64
(:func:`slim.metrics.fidelity.window_stats`); no full-vocabulary array is written
to the cache (why: :mod:`slim.steps.fidelity_reference`). Definitions follow
``llama-perplexity --kl-divergence``: rows n_ctx/2 … n_ctx−2 of each window are
scored (each predicts the next token with at least n_ctx/2 tokens of context);
KLD = Σ p_parent (log p_parent − log p_child). The parent may run in another
runtime than the child (the noise floor: the HF parent in torch vs its F16 GGUF in
llama.cpp); both are open at once, so the step holds both models in memory.
"""
from __future__ import annotations

import contextlib
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


def run(ctx):
    import json
    import time

    import numpy as np

    from slim.metrics.fidelity import scored_positions, summarise, window_stats
    from slim.runtimes import open_runtime, runtime_kind

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
    def opened(path):
        kw = {"flash_attn": True} if p.flash_attn and runtime_kind(path) == "llama.cpp" else {}
        return open_runtime(str(path), n_ctx=n_ctx, threads=ctx.threads, **kw)

    kv = str(p.kv_cache).lower()
    kv_parts: dict[str, dict[str, list]] = {"vs_parent": {}, "vs_f16_kv": {}}

    def opened_kv(path):
        """The child with a ``kv``-typed K and V cache (None for f16: nothing extra to open)."""
        if kv == "f16":
            return contextlib.nullcontext()
        import llama_cpp
        t = getattr(llama_cpp, f"GGML_TYPE_{kv.upper()}")
        return open_runtime(str(path), n_ctx=n_ctx, threads=ctx.threads, flash_attn=True,
                            type_k=t, type_v=t)

    with opened(parent) as prt, opened(model) as rt, opened_kv(model) as krt:
        for c in ctx.progress(range(len(tokens)), desc=f"fidelity ({prt.name} parent, "
                                                        f"{rt.name} child)"):
            window = tokens[c].tolist()
            t0 = time.perf_counter()
            pl = _rows(prt, window, a, b)
            t1 = time.perf_counter()
            ql = _rows(rt, window, a, b)
            t2 = time.perf_counter()
            s = window_stats(pl, ql, tokens[c, a + 1:b + 1])
            secs["parent"] += t1 - t0
            secs["child"] += t2 - t1
            secs["stats"] += time.perf_counter() - t2
            for k, v in s.items():
                parts.setdefault(k, []).append(v)
            if krt is not None:
                t3 = time.perf_counter()
                kl = _rows(krt, window, a, b)
                secs["child_kv"] = secs.get("child_kv", 0.0) + time.perf_counter() - t3
                for base, ref in (("vs_parent", pl), ("vs_f16_kv", ql)):
                    for k, v in window_stats(ref, kl, tokens[c, a + 1:b + 1]).items():
                        kv_parts[base].setdefault(k, []).append(v)
        runtime, runtime_parent = rt.name, prt.name
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
