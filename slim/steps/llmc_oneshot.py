"""Quantize or prune an HF model with ``llmcompressor.oneshot``; write a compressed-tensors folder.

One step kind covers llm-compressor's one-shot algorithms, chosen by ``algorithm``:

==============  ===========================================================  ============
algorithm       recipe (modifiers)                                           artifact
==============  ===========================================================  ============
``gptq``        GPTQModifier(scheme)                                         compressed-tensors
``awq``         AWQModifier + QuantizationModifier(scheme)                   compressed-tensors
``rtn``         QuantizationModifier(scheme) (FP8_DYNAMIC: no calibration)   compressed-tensors
``smoothquant`` SmoothQuantModifier + GPTQModifier / QuantizationModifier    compressed-tensors
``wanda``       WandaPruningModifier(sparsity, mask_structure)               hf (dense 16-bit)
``sparsegpt``   SparseGPTModifier(sparsity, mask_structure)                  hf (dense 16-bit)
``magnitude``   plain |w| pruning in torch (the baseline; no llm-compressor)  hf (dense 16-bit)
==============  ===========================================================  ============

Decisions made here and recorded in ``compress.json`` (the report shows them):

* **Group size per layer.** Group quantization needs ``in_features % group_size == 0``
  (compressed-tensors refuses anything else; SmolLM2's 576-wide layers are not
  divisible by 128). Each targeted Linear gets the largest size from
  ``[group_size, *group_fallbacks]`` that divides it; with none (or with
  ``indivisible: ignore``) the layer stays 16-bit and is listed with the reason;
  ``indivisible: error`` refuses instead. The choice becomes one llm-compressor
  config group per size, targeting the layers by exact-name regexes.
* **16-bit export.** Calibration runs in ``compute_dtype`` (fp32 by default: fastest and
  most accurate on CPU); the model is cast to the parent's 16-bit dtype before it is
  compressed and saved, and any fp32 tensor left is cast after, so embeddings, norms and
  lm_head are 16-bit as a user deploys them.
* **Sparse storage.** compressed-tensors 0.19 no longer has sparse compressors
  (``sparse-bitmask`` and ``sparse-24-bitmask`` are legacy: it neither writes nor loads
  them, and transformers cannot load them), so pruned models are saved dense. The
  measured dense size and the size a bitmask encoding would have are both recorded.
* **AWQ on CPU** needs :mod:`slim.compat.llmc_cpu`.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

VERSION = 1
LIBS = ("torch", "transformers", "llmcompressor", "compressed-tensors", "safetensors", "datasets")

QUANT_ALGOS = ("gptq", "awq", "rtn", "smoothquant")
PRUNE_ALGOS = ("wanda", "sparsegpt", "magnitude")
#: compressed-tensors preset schemes this step accepts (tests check they exist upstream)
SCHEMES = ("W4A16", "W4A16_ASYM", "W8A16", "W8A8", "INT8", "FP8", "FP8_DYNAMIC",
           "W3A16", "W2A16", "W4A8")
#: presets whose weights are quantized per group (the rest: per channel)
GROUP_SCHEMES = {"W4A16": 128, "W4A16_ASYM": 128, "W3A16": 128, "W2A16": 128, "W4A8": 128,
                 "W8A16": 128}
#: presets with static activation scales: even round-to-nearest needs calibration data
STATIC_ACT_SCHEMES = ("FP8",)
POLICIES = ("fallback", "ignore", "error")
DTYPES16 = ("float16", "bfloat16")


@dataclass
class Params:
    algorithm: str = "gptq"
    scheme: Optional[str] = None            # compressed-tensors preset (quant algorithms)
    group_size: Optional[int] = None        # default: the preset's (128 for W4A16)
    group_fallbacks: list = field(default_factory=lambda: [64, 32])
    indivisible: str = "fallback"           # fallback | ignore | error
    targets: list = field(default_factory=lambda: ["Linear"])
    ignore: list = field(default_factory=lambda: ["lm_head"])
    # GPTQ
    block_size: int = 128
    dampening_frac: float = 0.01
    actorder: Optional[str] = "static"      # static | group | weight | null
    # AWQ
    n_grid: int = 20
    duo_scaling: object = True             # true | false | both
    # SmoothQuant
    smoothing_strength: float = 0.8
    quantizer: str = "gptq"                 # what follows SmoothQuant: gptq | rtn
    # pruning
    sparsity: Optional[float] = None
    mask_structure: str = "0:0"             # "0:0" unstructured, "2:4" semi-structured
    # calibration and dtypes
    max_samples: Optional[int] = None       # use at most this many calibration windows
    compute_dtype: str = "float32"
    export_dtype: str = "auto"              # auto: the parent's 16-bit dtype
    subdir: str = ""                        # the HF folder inside the input step's output

    # -- checks that run before any work --------------------------------------
    def validate(self):
        errs = []
        a = self.algorithm
        if a not in QUANT_ALGOS + PRUNE_ALGOS:
            return [("algorithm", f"unknown algorithm {a!r}; one of "
                                  f"{', '.join(QUANT_ALGOS + PRUNE_ALGOS)}")]
        if a in QUANT_ALGOS:
            if not self.scheme:
                errs.append(("scheme", f"{a} needs a quantization scheme, one of {', '.join(SCHEMES)}"))
            elif self.scheme not in SCHEMES:
                errs.append(("scheme", f"unknown scheme {self.scheme!r}; one of {', '.join(SCHEMES)}"))
            if self.sparsity is not None:
                errs.append(("sparsity", f"{a} quantizes; sparsity belongs to a pruning stage"))
            if a == "awq" and self.scheme and self.scheme not in GROUP_SCHEMES:
                errs.append(("scheme", "AWQ scales weight-only group schemes (W4A16, W4A16_ASYM, "
                                       "W8A16, ...)"))
        else:
            if self.scheme:
                errs.append(("scheme", f"{a} prunes; quantize in a separate stage"))
            if not isinstance(self.sparsity, (int, float)) or not 0 < self.sparsity < 1:
                errs.append(("sparsity", "a fraction in (0, 1), e.g. 0.5"))
            m = re.fullmatch(r"(\d+):(\d+)", str(self.mask_structure))
            if not m:
                errs.append(("mask_structure", "N:M, e.g. 2:4 (0:0 = unstructured)"))
            elif m.group(1) != "0" or m.group(2) != "0":
                n, mm = int(m.group(1)), int(m.group(2))
                if not 0 < n < mm:
                    errs.append(("mask_structure", f"{self.mask_structure}: need 0 < N < M"))
                elif isinstance(self.sparsity, (int, float)) and abs(self.sparsity - n / mm) > 1e-6:
                    errs.append(("sparsity", f"mask {self.mask_structure} means sparsity "
                                             f"{n / mm:g}, not {self.sparsity}"))
        if self.group_size is not None and (not isinstance(self.group_size, int)
                                            or self.group_size < 1):
            errs.append(("group_size", "a positive integer"))
        if self.group_size is not None and self.scheme and self.scheme not in GROUP_SCHEMES:
            errs.append(("group_size", f"scheme {self.scheme} is per channel, not per group"))
        if not all(isinstance(g, int) and g > 0 for g in self.group_fallbacks or []):
            errs.append(("group_fallbacks", "a list of positive integers"))
        if self.indivisible not in POLICIES:
            errs.append(("indivisible", f"one of {', '.join(POLICIES)}"))
        if self.duo_scaling not in (True, False, "both"):
            errs.append(("duo_scaling", "true, false or both"))
        need = {True: 3, False: 2, "both": 4}.get(self.duo_scaling, 3)
        if not isinstance(self.n_grid, int) or self.n_grid < need:
            errs.append(("n_grid", f"at least {need} grid points with duo_scaling "
                                   f"{self.duo_scaling}"))
        if not 0 < self.smoothing_strength < 1:
            errs.append(("smoothing_strength", "in (0, 1)"))
        if self.quantizer not in ("gptq", "rtn"):
            errs.append(("quantizer", "gptq or rtn"))
        if self.actorder not in (None, "static", "group", "weight"):
            errs.append(("actorder", "static, group, weight or null"))
        if self.max_samples is not None and (not isinstance(self.max_samples, int)
                                             or self.max_samples < 1):
            errs.append(("max_samples", "a positive integer or null (all)"))
        if self.compute_dtype not in ("float32",) + DTYPES16:
            errs.append(("compute_dtype", "float32, bfloat16 or float16"))
        if self.export_dtype not in ("auto",) + DTYPES16:
            errs.append(("export_dtype", "auto, float16 or bfloat16"))
        return errs

    # -- derived ------------------------------------------------------------------
    @property
    def quantizes(self) -> bool:
        return self.algorithm in QUANT_ALGOS

    @property
    def needs_calibration(self) -> bool:
        if self.algorithm == "magnitude":
            return False
        if self.algorithm == "rtn":  # round-to-nearest: data only for static activation scales
            return self.scheme in STATIC_ACT_SCHEMES
        return True

    @property
    def effective_group_size(self) -> Optional[int]:
        if self.scheme not in GROUP_SCHEMES:
            return None
        return self.group_size or GROUP_SCHEMES[self.scheme]

    def describe(self) -> str:
        a = self.algorithm
        if a in PRUNE_ALGOS:
            mask = "" if self.mask_structure == "0:0" else f" {self.mask_structure}"
            return f"{a} {self.sparsity:.0%}{mask} pruning"
        g = self.effective_group_size
        return f"{a} {self.scheme}" + (f" g{g}" if g else "")


def plan_stage(planner, current, params: dict, index: int):
    from slim.errors import SlimError
    from slim.plan import Artifact
    from slim.steps.base import Step

    if current.format not in ("hf", "safetensors"):
        raise SlimError(f"llmc_oneshot needs a 16-bit HF model as input, got a {current.format} "
                        f"artifact (a quantized model cannot be quantized or pruned again)")
    params = plain(params)
    p = Params(**params)
    deps = {"model": current.step}
    if p.needs_calibration:
        deps["calibration"] = planner.calibration(planner.root_parent)
    full = {**params, **({"subdir": current.file} if current.file else {})}
    engine = "torch" if p.algorithm == "magnitude" else "llm-compressor"
    sid = planner.add(Step(f"llmc_oneshot:{index}", "llmc_oneshot", full, deps=deps,
                           desc=f"{engine} {p.describe()}"))
    return Artifact(sid, "compressed-tensors" if p.quantizes else "hf", "model")


# --------------------------------------------------------------------------------------
# helpers shared with the autoround step
# --------------------------------------------------------------------------------------

def plain(params: dict) -> dict:
    """Stage params as plain JSON data (Hydra hands over ListConfig/DictConfig values)."""
    from omegaconf import OmegaConf
    return {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in dict(params).items()}


def source_dir(ctx) -> Path:
    return ctx.inputs["model"] / ctx.params.subdir if ctx.params.subdir else ctx.inputs["model"]


def export_dtype_of(src: Path, wanted: str) -> str:
    """The 16-bit dtype to save in: ``wanted``, or for ``auto`` the parent's own 16-bit dtype."""
    if wanted != "auto":
        return wanted
    try:
        cfg = json.loads((src / "config.json").read_text())
    except (OSError, ValueError):
        return "float16"
    d = str(cfg.get("dtype") or cfg.get("torch_dtype") or "")
    return d if d in DTYPES16 else "float16"


def load_tokens(ctx, max_samples: Optional[int]):
    import numpy as np
    tokens = np.load(ctx.inputs["calibration"] / "tokens.npy")
    if max_samples:
        tokens = tokens[:max_samples]
    return tokens


def calibration_dataset(tokens):
    """A ``datasets.Dataset`` of pre-tokenized windows (nothing from the hub)."""
    import numpy as np
    from datasets import Dataset
    return Dataset.from_dict({"input_ids": tokens.astype(np.int64).tolist(),
                              "attention_mask": np.ones_like(tokens, dtype=np.int64).tolist()})


def linear_layers(model, targets, ignore) -> list[tuple[str, object]]:
    import torch
    from compressed_tensors.utils import match_named_modules
    return [(n, m) for n, m in match_named_modules(model, list(targets), list(ignore))
            if isinstance(m, torch.nn.Linear)]


def choose_group_sizes(layers, group_size: int, fallbacks, policy: str):
    """Per layer: the group size used, or why the layer stays unquantized.

    Returns ``(chosen {name: size}, ignored {name: reason})``; raises for ``policy=error``.
    """
    from slim.errors import SlimError
    sizes = [group_size] + [g for g in (fallbacks or []) if g < group_size]
    chosen, ignored, bad = {}, {}, []
    for name, mod in layers:
        cols = int(mod.in_features)
        if cols % group_size == 0:
            chosen[name] = group_size
            continue
        bad.append(f"{name} (in_features {cols})")
        if policy == "error":
            continue
        fit = next((g for g in sizes if cols % g == 0), None) if policy == "fallback" else None
        if fit is not None:
            chosen[name] = fit
        else:
            why = (f"in_features {cols} not divisible by group size {group_size}"
                   + (f" or any fallback ({', '.join(map(str, sizes[1:]))})"
                      if policy == "fallback" and sizes[1:] else "")
                   + "; kept 16-bit")
            ignored[name] = why
    if policy == "error" and bad:
        raise SlimError(f"group size {group_size} does not divide the input width of "
                        f"{len(bad)} layer(s): {', '.join(bad[:6])}"
                        f"{' ...' if len(bad) > 6 else ''}; set indivisible=fallback (use "
                        f"{'/'.join(map(str, sizes[1:])) or 'smaller groups'}) or "
                        f"indivisible=ignore (keep them 16-bit)", "group_size_indivisible")
    return chosen, ignored


def layer_template(name: str) -> str:
    """``model.layers.3.mlp.down_proj`` -> ``model.layers.*.mlp.down_proj`` (for the report)."""
    return re.sub(r"(?<=\.)\d+(?=\.)", "*", name)


def compact_targets(chosen: dict[str, int]) -> dict[int, list[str]]:
    """Group size -> targets: one anchored regex per layer template when every layer of the
    template has the same size, else the exact names (anchored regexes)."""
    by_tpl: dict[str, dict[str, int]] = {}
    for n, g in chosen.items():
        by_tpl.setdefault(layer_template(n), {})[n] = g
    out: dict[int, list[str]] = {}
    for tpl, members in sorted(by_tpl.items()):
        sizes = set(members.values())
        if len(sizes) == 1:
            rx = "re:^" + re.escape(tpl).replace(r"\*", r"\d+") + "$"
            out.setdefault(sizes.pop(), []).append(rx)
        else:
            for n, g in sorted(members.items()):
                out.setdefault(g, []).append("re:^" + re.escape(n) + "$")
    return out


def group_report(chosen: dict[str, int]) -> dict[str, object]:
    """Template -> group size (or {layer: size} when layers of a template differ)."""
    by_tpl: dict[str, dict[str, int]] = {}
    for n, g in chosen.items():
        by_tpl.setdefault(layer_template(n), {})[n] = g
    return {tpl: (next(iter(set(m.values()))) if len(set(m.values())) == 1 else dict(sorted(m.items())))
            for tpl, m in sorted(by_tpl.items())}


def measure_sparsity(layers, mask_structure: str = "0:0") -> dict:
    import torch
    zeros = total = 0
    per = []
    n, m = (int(x) for x in str(mask_structure or "0:0").split(":"))
    follows = True
    with torch.no_grad():
        for name, mod in layers:
            w = mod.weight.detach()
            z = int((w == 0).sum())
            zeros += z
            total += w.numel()
            per.append(z / max(1, w.numel()))
            if n and m and w.shape[-1] % m == 0:
                follows &= bool(((w.reshape(-1, m) == 0).sum(-1) >= n).all())
    out = {"linear_weights": round(zeros / max(1, total), 6), "layers": len(per),
           "min_layer": round(min(per), 6) if per else None,
           "max_layer": round(max(per), 6) if per else None,
           "scope": "weights of the targeted Linear layers (embeddings, norms, lm_head excluded)"}
    if n and m:
        out["mask_structure"] = f"{n}:{m}"
        out["follows_mask"] = follows
    return out


def _safetensors_header(path: Path) -> dict:
    import struct
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def cast_float_tensors(folder: Path, dtype: str) -> dict[str, int]:
    """Rewrite fp32 tensors of every safetensors file in ``folder`` as ``dtype``; fix config.

    Returns {tensor name: 1} for what was cast (empty when everything was 16-bit already).
    """
    import torch
    from safetensors.torch import load_file, save_file
    cast = {}
    target = getattr(torch, dtype)
    for f in sorted(folder.glob("*.safetensors")):
        hdr = _safetensors_header(f)
        if not any(v.get("dtype") == "F32" for k, v in hdr.items() if k != "__metadata__"):
            continue
        tensors = load_file(str(f))
        for k, t in tensors.items():
            if t.dtype == torch.float32:
                tensors[k] = t.to(target)
                cast[k] = 1
        tmp = f.with_name(f.name + ".tmp")
        save_file(tensors, str(tmp), metadata=hdr.get("__metadata__") or {"format": "pt"})
        os.replace(tmp, f)
    cfg = folder / "config.json"
    if cfg.is_file():
        c = json.loads(cfg.read_text())
        changed = False
        for key in ("dtype", "torch_dtype"):
            if key in c and c[key] != dtype:
                c[key] = dtype
                changed = True
        if changed:
            cfg.write_text(json.dumps(c, indent=2, sort_keys=True) + "\n")
    return cast


def folder_stats(folder: Path, n_params: int) -> dict:
    """Tensor dtype histogram, bytes and bits per weight of the safetensors in ``folder``."""
    from collections import Counter
    hist, by_bytes = Counter(), Counter()
    tensor_bytes = file_bytes = 0
    for f in sorted(folder.glob("*.safetensors")):
        file_bytes += f.stat().st_size
        for k, v in _safetensors_header(f).items():
            if k == "__metadata__":
                continue
            b = int(v["data_offsets"][1]) - int(v["data_offsets"][0])
            hist[v["dtype"]] += 1
            by_bytes[v["dtype"]] += b
            tensor_bytes += b
    folder_bytes = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {"tensor_types": dict(sorted(hist.items())), "bytes_by_type": dict(sorted(by_bytes.items())),
            "n_params": int(n_params), "tensor_bytes": tensor_bytes, "weights_file_bytes": file_bytes,
            "folder_bytes": folder_bytes,
            "bpw": round(8 * tensor_bytes / n_params, 4) if n_params else None,
            "file_bpw": round(8 * file_bytes / n_params, 4) if n_params else None,
            "bpw_basis": "8 × safetensors tensor bytes / parameters of the parent architecture"}


def count_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def library_versions(names) -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = None
    return out


class stderr_to_stdout:
    """Send fd 2 (loguru, tqdm, warnings of the engines) to fd 1, the step's log file."""

    def __enter__(self):
        import sys
        sys.stderr.flush()
        self.saved = os.dup(2)
        os.dup2(1, 2)
        return self

    def __exit__(self, *exc):
        import sys
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        return False


# --------------------------------------------------------------------------------------
# recipe
# --------------------------------------------------------------------------------------

def _scheme_groups(p: Params, chosen: dict[str, int]) -> dict:
    """llm-compressor ``config_groups`` for a group scheme with per-layer sizes (plain dicts)."""
    from compressed_tensors.quantization.quant_scheme import preset_name_to_scheme
    groups = {}
    for g, targets in sorted(compact_targets(chosen).items(), reverse=True):
        s = preset_name_to_scheme(p.scheme, targets)
        d = s.model_dump(mode="json", exclude_none=True)
        d["weights"]["group_size"] = g
        if p.algorithm == "gptq" or (p.algorithm == "smoothquant" and p.quantizer == "gptq"):
            if p.actorder is not None:
                d["weights"]["actorder"] = p.actorder
        d["targets"] = targets
        d.pop("format", None)
        d["weights"].pop("zp_dtype", None)
        d["weights"].pop("scale_dtype", None)
        groups[f"group_{g}"] = d
    return groups


def build_recipe(p: Params, chosen: dict[str, int] | None, ignored: dict[str, str]) -> list[dict]:
    """The modifiers as ``[{ModifierClass: kwargs}]`` (plain data, recorded as the recipe)."""
    ignore = list(p.ignore) + sorted(ignored)
    if p.quantizes:
        if chosen is not None:  # group scheme: per-layer sizes
            quant = {"config_groups": _scheme_groups(p, chosen), "ignore": ignore}
        else:
            quant = {"targets": list(p.targets), "scheme": p.scheme, "ignore": ignore}
        gptq = {**quant, "block_size": p.block_size, "dampening_frac": p.dampening_frac}
        if chosen is None and p.actorder is not None and p.scheme in GROUP_SCHEMES:
            gptq["actorder"] = p.actorder
        if p.algorithm == "gptq":
            return [{"GPTQModifier": gptq}]
        if p.algorithm == "rtn":
            return [{"QuantizationModifier": quant}]
        if p.algorithm == "awq":
            return [{"AWQModifier": {"n_grid": p.n_grid, "duo_scaling": p.duo_scaling}},
                    {"QuantizationModifier": quant}]
        sq = {"SmoothQuantModifier": {"smoothing_strength": p.smoothing_strength}}
        return [sq, {"GPTQModifier": gptq} if p.quantizer == "gptq" else {"QuantizationModifier": quant}]
    prune = {"sparsity": float(p.sparsity), "mask_structure": p.mask_structure,
             "targets": list(p.targets), "ignore": ignore}
    if p.algorithm == "wanda":
        return [{"WandaPruningModifier": prune}]
    if p.algorithm == "sparsegpt":
        return [{"SparseGPTModifier": {**prune, "block_size": p.block_size,
                                       "dampening_frac": p.dampening_frac}}]
    return [{"MagnitudePruning (slim, torch)": {**prune, "comparison": "per layer"
                                                if p.mask_structure == "0:0" else "per group of M"}}]


def _modifiers(recipe: list[dict]):
    from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
    from llmcompressor.modifiers.transform.awq import AWQModifier
    from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier
    classes = {c.__name__: c for c in (GPTQModifier, QuantizationModifier, AWQModifier,
                                       SmoothQuantModifier, WandaPruningModifier, SparseGPTModifier)}
    return [classes[name](**kwargs) for item in recipe for name, kwargs in item.items()]


def magnitude_prune(layers, sparsity: float, mask_structure: str) -> None:
    """Zero the smallest |w| per layer (unstructured) or N smallest per M inputs (N:M)."""
    import torch
    n, m = (int(x) for x in mask_structure.split(":"))
    with torch.no_grad():
        for _, mod in layers:
            w = mod.weight
            if n and m:
                g = w.reshape(-1, m)
                idx = g.abs().argsort(dim=-1)[:, :n]
                g.scatter_(1, idx, 0.0)
            else:
                k = int(round(w.numel() * sparsity))
                if k:
                    idx = torch.topk(w.abs().flatten(), k, largest=False).indices
                    w.view(-1)[idx] = 0.0


def sparse_storage(layers, folder_bytes_dense: int, dtype_bytes: int) -> dict:
    """Dense (measured) vs bitmask-compressed (computed) size of a pruned model."""
    saved = 0
    with_mask = 0
    for _, mod in layers:
        w = mod.weight
        numel = w.numel()
        nnz = int((w != 0).sum())
        dense = numel * dtype_bytes
        bitmask = nnz * dtype_bytes + (numel + 7) // 8 + 4 * w.shape[0]  # values + mask + row offsets
        saved += dense - bitmask
        with_mask += bitmask
    try:
        from compressed_tensors.compressors import BaseCompressor
        BaseCompressor.get_value_from_registry("sparse-bitmask")
        writer = True
    except Exception:  # noqa: BLE001 - no such compressor registered
        writer = False
    import compressed_tensors
    return {"chosen": "dense", "dense_bytes": folder_bytes_dense,
            "bitmask_bytes_estimate": folder_bytes_dense - saved,
            "pruned_tensors_bitmask_bytes": with_mask,
            "reason": ("bitmask storage would be smaller, but compressed-tensors "
                       f"{compressed_tensors.__version__} has no sparse compressor (sparse-bitmask "
                       "is a legacy format it neither writes nor loads; transformers could not "
                       "load the result)" if not writer and saved > 0 else
                       "dense is smaller" if saved <= 0 else
                       "sparse compression is not wired up in this slim version")}


# --------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------

def run(ctx):
    import torch
    from transformers import AutoTokenizer

    from slim.errors import SlimError
    from slim.models.hf_io import load_causal_lm

    p: Params = ctx.params
    torch.set_num_threads(ctx.threads)
    torch.manual_seed(0)
    src = source_dir(ctx)
    export = export_dtype_of(src, p.export_dtype)
    t0 = time.time()
    model = load_causal_lm(src, p.compute_dtype)
    model.eval()
    tok = AutoTokenizer.from_pretrained(str(src))
    n_params = count_params(model)
    layers = linear_layers(model, p.targets, p.ignore)
    if not layers:
        raise SlimError(f"no Linear layer matches targets {p.targets} minus ignore {p.ignore}",
                        "export_quantization_failed")

    chosen, ignored = None, {}
    g = p.effective_group_size if p.quantizes else None
    if g:
        chosen, ignored = choose_group_sizes(layers, g, p.group_fallbacks, p.indivisible)
        if not chosen:
            raise SlimError(f"no layer can be quantized with group size {g}: "
                            f"{'; '.join(f'{k}: {v}' for k, v in list(ignored.items())[:4])}",
                            "group_size_indivisible")
    recipe = build_recipe(p, chosen, ignored)
    tokens = load_tokens(ctx, p.max_samples) if p.needs_calibration else None
    out_dir = ctx.out / "model"
    info: dict = {"algorithm": p.algorithm, "scheme": p.scheme, "recipe": recipe,
                  "compute_dtype": p.compute_dtype, "export_dtype": export,
                  "calibration": None if tokens is None else
                  {"samples": int(tokens.shape[0]), "seq_len": int(tokens.shape[1]),
                   "tokens": int(tokens.size)}}
    t1 = time.time()
    with stderr_to_stdout():
        if p.algorithm == "magnitude":
            info["engine"] = "torch magnitude pruning (slim)"
            magnitude_prune(layers, float(p.sparsity), p.mask_structure)
            compress_s = time.time() - t1
            model.to(getattr(torch, export))
            model.save_pretrained(out_dir, safe_serialization=True)
        else:
            info["engine"] = "llm-compressor oneshot"
            if p.quantizes:  # zeros of a quantized model are mostly values rounded to 0: report
                # the input's sparsity instead (non-zero when a pruning stage came first)
                info["input_sparsity"] = measure_sparsity(layers)
            info["workarounds"] = _oneshot(model, recipe, tokens, p)
            compress_s = time.time() - t1
            if not p.quantizes:
                info["sparsity"] = measure_sparsity(layers, p.mask_structure)
            model.to(getattr(torch, export))
            try:
                model.save_pretrained(out_dir, save_compressed=True)
            except (ValueError, RuntimeError, NotImplementedError) as e:
                raise SlimError(f"llm-compressor could not export {p.describe()}: "
                                f"{str(e).splitlines()[0]}", "export_quantization_failed") from None
        tok.save_pretrained(out_dir)
    if p.algorithm == "magnitude":
        info["sparsity"] = measure_sparsity(layers, p.mask_structure)
    save_s = time.time() - t1 - compress_s
    cast = cast_float_tensors(out_dir, export)
    if cast:
        info["cast_to_16bit_after_save"] = sorted(cast)
    rfile = out_dir / "recipe.yaml"
    if rfile.is_file():
        info["recipe_yaml"] = rfile.read_text()
    if chosen is not None:
        info["group_sizes"] = group_report(chosen)
        info["group_size_policy"] = {"configured": g, "fallbacks": list(p.group_fallbacks),
                                     "indivisible": p.indivisible}
    if p.quantizes:
        info["ignored_layers"] = {**{i: "configured ignore" for i in p.ignore}, **ignored}
        _check_quantized(out_dir, p)
    stats = folder_stats(out_dir, n_params)
    info.update(stats)
    if not p.quantizes:
        info["sparsity"]["storage"] = sparse_storage(layers, stats["weights_file_bytes"],
                                                torch.finfo(getattr(torch, export)).bits // 8)
    info["seconds"] = {"load": round(t1 - t0, 2), "compress": round(compress_s, 2),
                       "save": round(save_s, 2)}
    info["libraries"] = library_versions(["llmcompressor", "compressed-tensors", "torch",
                                          "transformers"])
    ctx.write_json("compress.json", info)


def _oneshot(model, recipe, tokens, p: Params) -> list[str]:
    from llmcompressor import oneshot

    from slim.compat.llmc_cpu import cpu_pin_memory_workaround
    from slim.errors import SlimError

    mods = _modifiers(recipe)
    kw = {}
    if tokens is not None:
        kw = {"dataset": calibration_dataset(tokens), "num_calibration_samples": int(tokens.shape[0]),
              "max_seq_length": int(tokens.shape[1]), "shuffle_calibration_samples": False}
    used = []
    with cpu_pin_memory_workaround() as patched:
        if patched and p.algorithm == "awq":
            used.append("slim.compat.llmc_cpu: IntermediatesCache.pin_memory skipped "
                        "(no accelerator)")
        try:
            oneshot(model=model, recipe=mods, **kw)
        except ValueError as e:
            msg = str(e)
            if "divisible" in msg:
                raise SlimError(f"llm-compressor rejected the group size: {msg.splitlines()[0]}",
                                "group_size_indivisible") from None
            raise
    return used


def _check_quantized(folder: Path, p: Params) -> None:
    """The export must really be quantized: config has quantization_config, weights packed."""
    from slim.errors import SlimError
    cfg = json.loads((folder / "config.json").read_text())
    q = cfg.get("quantization_config") or {}
    if q.get("quant_method") != "compressed-tensors" or not q.get("config_groups"):
        raise SlimError(f"{p.describe()}: the saved model has no compressed-tensors "
                        f"quantization config", "export_quantization_failed")
    if q.get("quantization_status") != "compressed":
        raise SlimError(f"{p.describe()}: the saved model is not compressed "
                        f"(status {q.get('quantization_status')})", "export_quantization_failed")
