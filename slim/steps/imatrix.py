"""Importance matrix from calibration activations, computed in torch.

llama.cpp's ``llama-imatrix`` tool is not part of llama-cpp-python, so we compute
the same statistic ourselves: for every linear layer, the mean over calibration
tokens of the squared input activation per input column (llama-imatrix stores
``sum(x^2) / count``). MoE experts get one such vector per expert over the tokens
routed to it, laid out expert-major as llama-imatrix writes ``*_exps`` entries
(an expert no calibration token reached gets ones, i.e. no weighting). Tensor
names come from gguf-py's HF→GGUF name map for the F16 GGUF's architecture and
are checked against the file, so a naming mismatch fails here, not silently in
the quantizer.

Speed (issue 15; measured in docs/evaluation_speed.md against llama-imatrix on the
same 128 × 512 tokens). The forward runs under CPU bfloat16 autocast: the
matmuls run in bf16 (oneDNN's native kernels on AVX512-BF16/AMX CPUs, ~2.4× fp32
here), while the residual stream, the norms and so every linear layer's *input*
stay float32, and x² is summed in float32 per batch and float64 across batches.
The statistic is a 65k-token mean per column, so bf16 rounding inside earlier
layers moves it by well under 1 % and the Q4_K_M KLD by less (measured beside the
fp32 and llama-imatrix matrices). Modules fed the same tensor (q/k/v, gate/up)
share one x² sum, and the LM head is never run unless the GGUF has its own
``output.weight``. ``dtype: float32`` restores the exact fp32 path.
"""
from __future__ import annotations

from dataclasses import dataclass

VERSION = 3
LIBS = ("torch", "transformers", "llama.cpp-toolchain", "numpy")


@dataclass
class Params:
    batch_size: int = 8
    subdir: str = ""     # the HF folder inside the model step's output
    dtype: str = "bfloat16"   # matmul precision under CPU autocast; "float32": no autocast


def memory(params, model: dict) -> dict:
    """bf16 path over a 16-bit parent: the weights are mapped from the file and given back
    after each module (about one layer resident) — measured 0.77 GiB peak on a 1.07B bf16
    folder, batch 8 × 512 (docs/scaling.md §8); 1 byte/param leaves room for a batch's
    activations at any size. The float32 path holds a float32 copy (measured 6.1 bytes/param)."""
    from slim.steps.base import TORCH_BASE
    n = int(model.get("params") or 0)
    if getattr(params, "dtype", "bfloat16") == "bfloat16" and model.get("bytes_per_param") == 2:
        return {"ram": n + TORCH_BASE,
                "why": "16-bit weights mapped and given back per layer, bf16 autocast (≤ 1 byte/param)"}
    return {"ram": int(6.5 * n) + TORCH_BASE, "why": "the parent in float32 (6.5 bytes/param)"}


class _Stats:
    """Running per-column sums of x^2 (fp64) and token counts per GGUF tensor (per expert)."""

    def __init__(self):
        self.sums, self.counts = {}, {}

    def add(self, name, x2sum, count, n_expert=None, expert=None):
        import torch
        if name not in self.sums:
            shape = (n_expert, x2sum.shape[0]) if n_expert else (x2sum.shape[0],)
            self.sums[name] = torch.zeros(shape, dtype=torch.float64)
            self.counts[name] = torch.zeros(n_expert or 1, dtype=torch.float64)
        if n_expert:
            self.sums[name][expert] += x2sum.to(torch.float64)
            self.counts[name][expert] += count
        else:
            self.sums[name] += x2sum.to(torch.float64)
            self.counts[name][0] += count

    def means(self):
        import torch
        out, empty = {}, 0
        for g, s in self.sums.items():
            c = self.counts[g]
            if s.dim() == 2:
                m = torch.ones_like(s)
                hit = c > 0
                m[hit] = s[hit] / c[hit, None]
                empty += int((~hit).sum())
                out[g] = m.reshape(-1).to(torch.float32).numpy()
            else:
                out[g] = (s / c[0]).to(torch.float32).numpy()
        return out, empty


def _expert_hook(stats, mod, names):
    import torch

    n_exp = mod.gate_up_proj.shape[0]

    def hook(m, args, kwargs):
        hs = (args[0] if args else kwargs["hidden_states"]).detach()
        idx = args[1] if len(args) > 1 else kwargs["top_k_index"]
        hs = hs.reshape(-1, hs.shape[-1])
        idx = idx.reshape(hs.shape[0], -1)
        for e in range(n_exp):
            x = hs[(idx == e).any(-1)]
            if not len(x):
                continue
            x2 = (x * x).sum(0)
            stats.add(names["gate"], x2, len(x), n_exp, e)
            stats.add(names["up"], x2, len(x), n_exp, e)
            gate, up = torch.nn.functional.linear(x, m.gate_up_proj[e]).chunk(2, dim=-1)
            h = (m.act_fn(gate) * up).to(torch.float32)  # bf16 under autocast
            stats.add(names["down"], (h * h).sum(0), len(x), n_exp, e)
    return mod.register_forward_pre_hook(hook, with_kwargs=True)


def _load(src, dtype: str, load_causal_lm):
    """The model for the forward: float32 for the exact path; for bf16 autocast, the linear
    weights stay in the source's 16-bit dtype (autocast rounds them to bf16 per matmul, the
    same values it rounded from a float32 copy), the embedding table too (its rows upcast to
    float32 on lookup) and every other parameter (norms) is float32, so the residual stream
    is float32 as before; the 16-bit weights' pages are given back after use (issue 16)."""
    import json
    from pathlib import Path

    import torch
    if dtype != "bfloat16":
        return load_causal_lm(src, "float32")
    cfg = json.loads((Path(src) / "config.json").read_text())
    src_dtype = cfg.get("torch_dtype") or cfg.get("dtype")
    if src_dtype not in ("float16", "bfloat16"):  # float32 weights: rounding them to 16 bits
        return load_causal_lm(src, "float32")     # first would change the bf16 values
    from slim.runtimes.torch_lowmem import float32_embedding, release_pages
    model = load_causal_lm(src, src_dtype)
    for m in model.modules():
        if isinstance(m, torch.nn.Embedding) and m.weight.dtype == getattr(torch, src_dtype):
            float32_embedding(m)   # float32 rows from the 16-bit table: the copy's rows
        elif not isinstance(m, torch.nn.Linear):
            for p in m.parameters(recurse=False):
                p.data = p.data.float()
            for name, b in m.named_buffers(recurse=False):
                if b is not None and b.is_floating_point():
                    setattr(m, name, b.float())
    # weights mapped from the 16-bit safetensors are given back after each module has run
    # (slim/runtimes/torch_lowmem.py): about one layer resident instead of the whole model
    release_pages(model)
    return model


def run(ctx):
    import json

    import numpy as np
    import torch

    from slim.errors import SlimError
    from slim.models.gguf_header import read_gguf_header
    from slim.models.hf_io import load_causal_lm
    from slim.steps.gguf_names import expert_modules, hf_to_gguf_names

    torch.set_num_threads(ctx.threads)
    tokens = np.load(ctx.inputs["calibration"] / "tokens.npy")
    src = ctx.inputs["model"] / ctx.params.subdir if ctx.params.subdir else ctx.inputs["model"]
    model = _load(src, ctx.params.dtype, load_causal_lm)
    model.eval()
    kv, tensors = read_gguf_header(ctx.inputs["f16"] / "model.gguf", keys=("general.architecture",))
    gguf_tensors = {t.name: t for t in tensors}
    arch = kv.get("general.architecture", "")
    names = hf_to_gguf_names(model, gguf_tensors, arch)
    experts = expert_modules(model, gguf_tensors)
    if not names and not experts:
        raise SlimError(f"no linear layer of the model maps to a tensor of the F16 GGUF "
                        f"(architecture {arch!r})", "imatrix_failed")

    if ctx.params.dtype not in ("bfloat16", "float32"):
        raise SlimError(f"imatrix dtype {ctx.params.dtype!r} is not bfloat16 or float32",
                        "invalid_dtype")
    stats = _Stats()
    hooks = []
    last: list = [None, None]   # (input tensor, its x² sum): q/k/v and gate/up share one input

    def x2sum(t):
        if last[0] is not t:
            x = t.detach().reshape(-1, t.shape[-1]).to(torch.float32)
            last[0], last[1] = t, torch.einsum("ij,ij->j", x, x)  # per-batch sum in fp32
        return last[1]

    for mod_name, gname in names.items():
        def hook(m, args, _g=gname):
            x2 = x2sum(args[0])
            stats.add(_g, x2, args[0].numel() // args[0].shape[-1])  # running sum in fp64
        hooks.append(model.get_submodule(mod_name).register_forward_pre_hook(hook))
    for mod_name, enames in experts.items():
        hooks.append(_expert_hook(stats, model.get_submodule(mod_name), enames))
    bs = max(1, ctx.params.batch_size)
    # the LM head only matters when the GGUF has its own output.weight (untied embeddings)
    run_head = "output.weight" in names.values()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=ctx.params.dtype == "bfloat16")
    with torch.no_grad(), autocast:
        for i in ctx.progress(range(0, len(tokens), bs), desc="imatrix"):
            ids = torch.from_numpy(tokens[i:i + bs].astype(np.int64))
            (model if run_head else model.base_model)(ids)
            last[0] = last[1] = None
    for h in hooks:
        h.remove()
    arrays, empty_experts = stats.means()
    for g, a in arrays.items():
        shape = gguf_tensors[g].shape  # GGUF shape: (row length, rows[, experts])
        want = shape[0] * (shape[2] if len(shape) == 3 else 1)
        if a.shape[0] != want:
            raise SlimError(f"imatrix for {g} has {a.shape[0]} values, the GGUF tensor "
                            f"{list(shape)} needs {want}", "imatrix_failed")
    np.savez(ctx.out / "imatrix.npz", **arrays)
    (ctx.out / "imatrix.json").write_text(json.dumps({
        "entries": len(arrays), "chunks": int(len(tokens)), "tokens": int(tokens.size),
        "architecture": arch, "expert_entries": 3 * len(experts),
        "experts_without_tokens": empty_experts, "dtype": ctx.params.dtype,
        "batch_size": bs,
        "statistic": "mean of squared input activation per column (llama-imatrix convention); "
                     "per expert over its routed tokens for *_exps tensors"}, indent=2))
