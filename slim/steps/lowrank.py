"""Low-rank factorisation: selected Linear weights replaced by truncated-SVD factors.

For each Linear whose qualified name matches one of ``modules`` (regexes, default
the attention and MLP projections of every decoder layer), ``W (m×n) ≈ A·B`` with
``A = U_r·diag(σ_r)`` (m×r) and ``B = V_rᵀ`` (r×n). The rank ``r`` is the smallest
that keeps ``energy`` of the spectral energy (``Σ_{i≤r} σ_i² / Σ σ_i²``), or the
rank at which the factors hold ``param_fraction`` of the dense weight's
parameters (``r = ⌊f·mn/(m+n)⌋``), or a fixed ``rank``. A layer whose factors
would not be smaller than the dense weight (``r(m+n) ≥ mn``) stays dense.

``whiten: activation`` factorises ``W·diag(s)`` instead, with ``s_j`` the RMS of
input column ``j`` over the calibration windows, and maps back with
``diag(1/s)`` (activation-aware SVD, ASVD arXiv:2312.05821): the truncation then
drops what the layer's actual inputs excite least.

Storage: transformers' Llama/Qwen2/Mistral modules have no factorised Linear,
and loading one would need ``trust_remote_code`` (and llama.cpp's converter would
not take it either). So the artifact (``model/``) is the **dense
reconstruction** ``A·B`` in 16-bit, loadable by transformers and convertible to
GGUF like any model, while the factors themselves are kept beside it
(``factors.safetensors``, outside the artifact) and ``lowrank.json`` records every
layer's rank, energy kept, and the parameter count before and after
factorisation (the count a factored runtime would hold).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

VERSION = 1
#: torch OpenMP threads wait passively (the executor sets OMP_WAIT_POLICY; shared CPUs)
OMP_PASSIVE = True
LIBS = ("torch", "transformers", "safetensors", "numpy")

DEFAULT_MODULES = [r"\.mlp\.(gate|up|down)_proj$", r"\.self_attn\.(q|k|v|o)_proj$"]
_WHITEN = ("none", "activation")


@dataclass
class Params:
    energy: Optional[float] = None          # keep this fraction of Σσ²
    param_fraction: Optional[float] = None  # factors hold this fraction of the dense params
    rank: Optional[int] = None              # fixed rank
    modules: list = field(default_factory=lambda: list(DEFAULT_MODULES))
    whiten: str = "none"                    # none | activation (ASVD-style column scaling)
    calibration_samples: int = 16           # windows for whiten=activation
    dtype: str = "float16"
    subdir: str = ""

    def validate(self):
        errs = []
        given = [k for k in ("energy", "param_fraction", "rank") if getattr(self, k) is not None]
        if len(given) != 1:
            errs.append(("", "give exactly one of energy, param_fraction, rank"))
        if self.energy is not None and not (isinstance(self.energy, (int, float))
                                            and 0 < self.energy < 1):
            errs.append(("energy", f"must be in (0, 1) (got {self.energy})"))
        if self.param_fraction is not None and not (
                isinstance(self.param_fraction, (int, float)) and 0 < self.param_fraction < 1):
            errs.append(("param_fraction", f"must be in (0, 1) (got {self.param_fraction})"))
        if self.rank is not None and (not isinstance(self.rank, int) or self.rank < 1):
            errs.append(("rank", f"must be a positive integer (got {self.rank})"))
        if not self.modules:
            errs.append(("modules", "list at least one module name pattern"))
        for i, pat in enumerate(self.modules or []):
            try:
                re.compile(pat)
            except re.error as e:
                errs.append((f"modules[{i}]", f"not a regular expression: {e}"))
        if self.whiten not in _WHITEN:
            errs.append(("whiten", f"must be one of {', '.join(_WHITEN)}"))
        if not isinstance(self.calibration_samples, int) or self.calibration_samples < 1:
            errs.append(("calibration_samples", "must be a positive integer"))
        if self.dtype not in ("float16", "bfloat16"):
            errs.append(("dtype", "must be float16 or bfloat16"))
        return errs

    @property
    def needs_calibration(self) -> bool:
        return self.whiten == "activation"


def storage(p: Params) -> dict:
    """Ranks come from the weights' singular values: no size without the weights."""
    from slim.errors import SlimError
    raise SlimError("its ranks come from the weights' singular values, which plan=true does not "
                    "read; build it to measure", "unknown_method")


def plan_stage(planner, current, params: dict, index: int):
    from slim.errors import SlimError
    from slim.steps.base import Artifact, Step

    if current.format not in ("hf", "safetensors"):
        raise SlimError(f"lowrank needs a 16-bit HF model as input, got {current.format}")
    from slim.steps.helpers import plain
    params = plain(params)   # Hydra hands lists over as ListConfig: the step spec is JSON
    p = Params(**params)
    deps = {"model": current.step}
    if p.needs_calibration:
        deps["calibration"] = planner.calibration(planner.root_parent)
    how = (f"{p.energy:.0%} spectral energy" if p.energy is not None else
           f"factors at {p.param_fraction:.0%} of dense params" if p.param_fraction is not None
           else f"rank {p.rank}")
    sid = planner.add(Step(f"lowrank:{index}", "lowrank",
                           {**params, **({"subdir": current.file} if current.file else {})},
                           deps=deps, desc=f"truncated SVD ({how}"
                                           f"{', activation-whitened' if p.whiten != 'none' else ''})"
                                           f", dense reconstruction"))
    return Artifact(sid, "hf", "model")


def choose_rank(s, m: int, n: int, p: Params) -> int:
    """Rank for singular values ``s`` (descending, torch) of an m×n matrix."""
    import torch
    full = len(s)
    if p.rank is not None:
        return min(p.rank, full)
    if p.param_fraction is not None:
        return max(1, min(full, int(p.param_fraction * m * n / (m + n))))
    e = torch.cumsum(s.double() ** 2, 0)
    e = e / e[-1]
    return min(full, int(torch.searchsorted(e, torch.tensor([p.energy], dtype=e.dtype)).item()) + 1)


def column_rms(model, names: list[str], tokens, n_samples: int):
    """RMS of every input column of the named Linear modules over calibration windows."""
    import numpy as np
    import torch
    sums, counts, hooks = {}, {}, []
    for name in names:
        def hook(mod, args, _n=name):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            sums[_n] = sums.get(_n, 0) + (x * x).sum(0)
            counts[_n] = counts.get(_n, 0) + x.shape[0]
        hooks.append(model.get_submodule(name).register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            for i in range(min(n_samples, len(tokens))):
                model(torch.from_numpy(tokens[i:i + 1].astype(np.int64)))
    finally:
        for h in hooks:
            h.remove()
    return {k: (sums[k] / counts[k]).sqrt() for k in sums}


def factorise(model, p: Params, tokens=None, log=print, progress=None, out_dtype=None):
    """Replace matching Linear weights in place by their rank-r reconstruction.

    Returns (factors {name.A / name.B: tensor}, per-layer records). Each layer is factorised
    in float64 from its own weight (a 16-bit weight widens exactly). ``out_dtype`` (a 16-bit
    torch dtype): reconstructions and factors are stored in it at once, rounded through
    float32 exactly as the float32 path rounds them when it saves (so a 16-bit model needs no
    float32 copy of its weights or factors); None keeps the weight's dtype and float32 factors.
    """
    import torch

    from slim.errors import SlimError
    pats = [re.compile(x) for x in p.modules]
    names = [n for n, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and any(x.search(n) for x in pats)]
    if not names:
        raise SlimError(f"lowrank.modules {p.modules} match no Linear layer of "
                        f"{type(model).__name__}", "bad_params")
    scale = None
    if p.whiten == "activation":
        if tokens is None:
            raise SlimError("lowrank: whiten=activation needs calibration tokens", "bad_params")
        log(f"input-column RMS of {len(names)} layers on {min(p.calibration_samples, len(tokens))} "
            f"calibration windows")
        scale = column_rms(model, names, tokens, p.calibration_samples)
    factors, layers = {}, []
    it = progress(names, desc="svd") if progress else names
    with torch.no_grad():
        for name in it:
            lin = model.get_submodule(name)
            w = lin.weight.data.double()
            m, n = w.shape
            s_col = None
            if scale is not None:
                s_col = scale[name].clamp_min(1e-6 * float(scale[name].max()) + 1e-12)
                w_eff = w * s_col
            else:
                w_eff = w
            u, s, vh = torch.linalg.svd(w_eff, full_matrices=False)
            r = choose_rank(s, m, n, p)
            energy = float((s[:r] ** 2).sum() / (s ** 2).sum())
            factored = r * (m + n) < m * n
            rec = {"name": name, "shape": [m, n], "full_rank": len(s),
                   "rank": r if factored else len(s), "rank_chosen": r,
                   "energy_kept": round(energy, 6) if factored else 1.0,
                   "energy_at_rank_chosen": round(energy, 6), "params_dense": m * n,
                   "params_factored": r * (m + n) if factored else m * n, "factored": factored}
            if factored:
                a = u[:, :r] * s[:r]
                b = vh[:r]
                if s_col is not None:
                    b = b / s_col
                if out_dtype is None:
                    lin.weight.data.copy_((a @ b).to(lin.weight.dtype))
                else:
                    lin.weight.data = (a @ b).float().to(out_dtype)
                fdt = out_dtype or torch.float32
                factors[f"{name}.A"] = a.float().to(fdt).contiguous()
                factors[f"{name}.B"] = b.float().to(fdt).contiguous()
                err = float(((w - a @ b).norm() / w.norm()))
                rec["rel_error"] = round(err, 6)
            layers.append(rec)
    return factors, layers


def _null():
    import contextlib
    return contextlib.nullcontext()


def run(ctx):
    import time

    import numpy as np
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from slim.models.hf_io import load_causal_lm, save_16bit

    t0 = time.time()
    torch.set_num_threads(ctx.threads)
    p = ctx.params
    src = ctx.inputs["model"] / p.subdir if p.subdir else ctx.inputs["model"]
    # a 16-bit parent stays 16-bit: the whitening forward computes each module in float32
    # (slim.models.upcast) and each layer is factorised from its own widened weight, so the
    # output is bit-identical to the float32 copy's at 2 instead of 4 bytes/param
    from slim.models.hf_io import source_dtype
    from slim.models.upcast import Float32Compute, storage_dtype
    weights = storage_dtype(source_dtype(src), "float32")
    model = load_causal_lm(src, weights)
    model.eval()
    from slim.steps.base import note_device
    note_device("torch cpu float32" + (f" (weights {weights})" if weights != "float32" else ""))
    tokens = np.load(ctx.inputs["calibration"] / "tokens.npy") if "calibration" in ctx.inputs \
        else None
    before = sum(q.numel() for q in model.parameters())
    with Float32Compute(model) if weights != "float32" else _null():
        factors, layers = factorise(model, p, tokens, ctx.log, ctx.progress,
                                    out_dtype=getattr(torch, p.dtype) if weights != "float32"
                                    else None)
    tok = AutoTokenizer.from_pretrained(str(src))
    save_16bit(model, tok, ctx.out / "model", p.dtype)
    dt = getattr(torch, p.dtype)
    save_file({k: v.to(dt) for k, v in factors.items()}, str(ctx.out / "factors.safetensors"))
    dense_t = sum(r["params_dense"] for r in layers)
    fact_t = sum(r["params_factored"] for r in layers)
    after = before - dense_t + fact_t
    n_fact = sum(r["factored"] for r in layers)
    ctx.log(f"{n_fact}/{len(layers)} layers factored; params {before / 1e6:.2f}M -> "
            f"{after / 1e6:.2f}M if factored")
    ctx.write_json("compress.json", {   # what the report's artifact section reads
        "engine": "truncated SVD (torch.linalg.svd), dense reconstruction",
        "n_params": before, "n_params_factored": after})
    ctx.write_json("lowrank.json", {
        "storage": "dense reconstruction in model/ (transformers has no factorised Linear for "
                   "these architectures without custom code); factors in factors.safetensors",
        "selection": ({"energy": p.energy} if p.energy is not None else
                      {"param_fraction": p.param_fraction} if p.param_fraction is not None
                      else {"rank": p.rank}),
        "whiten": p.whiten, "modules": p.modules,
        "layers": layers, "layers_matched": len(layers), "layers_factored": n_fact,
        "params_before": before, "params_after": after,
        "params_on_disk": before, "params_ratio": round(after / before, 6),
        "target_params_before": dense_t, "target_params_after": fact_t,
        "mean_energy_kept": round(float(np.mean([r["energy_kept"] for r in layers])), 6),
        "dtype": p.dtype, "wall_seconds": round(time.time() - t0, 2)})
