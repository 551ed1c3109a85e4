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
* **16-bit weights, float32 math.** Calibration computes in ``compute_dtype`` (fp32 by
  default: most accurate, and fast on CPU), but a 16-bit parent is never copied to float32:
  its weights are loaded in their own bf16/fp16 dtype and widened one decoder layer at a time
  (:mod:`slim.models.upcast`, lazy blocks): llm-compressor's sequential pipeline runs one layer
  over all calibration samples, updates it (GPTQ/AWQ/pruning, whose own solvers work in fp32),
  then propagates through it; that layer is float32 throughout, exactly as in a float32-loaded
  model, and is narrowed back when the next layer starts. Peak memory: the 16-bit model plus
  one layer in float32 plus the calibration activations (was the whole model in float32).
  With an accelerator the pipeline onloads each layer to it (``get_main_device``).
* **16-bit export.** The model is cast to the parent's 16-bit dtype before it is
  compressed and saved, and any fp32 tensor left is cast after, so embeddings, norms and
  lm_head are 16-bit as a user deploys them.
* **Sparse storage.** compressed-tensors 0.19 no longer has sparse compressors
  (``sparse-bitmask`` and ``sparse-24-bitmask`` are legacy: it neither writes nor loads
  them, and transformers cannot load them), so pruned models are saved dense. The
  measured dense size and the size a bitmask encoding would have are both recorded.
* **AWQ on CPU** needs :mod:`slim.compat.llmc_cpu`.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Optional

from slim.compress.group_sizes import (POLICIES, choose_group_sizes, group_report,
                                       linear_layers)
from slim.compress.pruning import magnitude_prune, measure_sparsity, sparse_storage
from slim.compress.recipe import build_recipe, modifiers
from slim.models.safetensors_folder import cast_float_tensors, folder_stats
from slim.steps.helpers import (calibration_dataset, check_quantized,
                                check_sample_and_dtype_params, count_params, export_dtype_of,
                                library_versions, load_tokens, plain, source_dir,
                                stderr_to_stdout)

VERSION = 2  # 2: 16-bit weights widened per layer (no float32 copy)
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
        return errs + check_sample_and_dtype_params(self)

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


def memory(params, model: dict) -> dict:
    """A 16-bit parent computed in float32: its 16-bit weights (2 bytes/param) plus one decoder
    layer widened to float32, the solver's per-layer statistics (Hessians), the embedding/LM
    head widened for one call and the calibration activations -- measured on a 0.42B bf16
    folder (docs/scaling.md §9). Otherwise (float32 source, or another compute dtype) the
    model held in the compute dtype plus the same working memory."""
    from slim.steps.base import TORCH_BASE
    n = int(model.get("params") or 0)
    if params.compute_dtype == "float32" and model.get("bytes_per_param") != 2:
        return {"ram": int(6.5 * n) + TORCH_BASE,
                "why": "the model in float32 plus working memory (6.5 bytes/param)"}
    return {"ram": int(MEMORY_BYTES_PER_PARAM * n) + TORCH_BASE,
            "why": f"16-bit weights, one decoder layer in float32 at a time, calibration "
                   f"activations ({MEMORY_BYTES_PER_PARAM} bytes/param)"}


#: (peak RSS - TORCH_BASE) per parameter: measured 4.2 for gptq_w4 on the 0.42B bf16 folder,
#: incl. a ~1 GB transient at the end of the sequential pipeline (docs/scaling.md §9)
MEMORY_BYTES_PER_PARAM = 4.5


def plan_stage(planner, current, params: dict, index: int):
    from slim.errors import SlimError
    from slim.steps.base import Artifact, Step

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
    from slim.models.hf_io import source_dtype
    from slim.models.upcast import storage_dtype
    weights = storage_dtype(source_dtype(src), p.compute_dtype)
    model = load_causal_lm(src, weights)
    model.eval()
    from slim.steps.base import note_device
    note_device(f"torch {_main_device(p)} {p.compute_dtype}"
                + (f" (weights {weights}, widened per layer)" if weights != p.compute_dtype else ""))
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
                  "compute_dtype": p.compute_dtype, "weights_dtype": weights,
                  "export_dtype": export,
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
            info["workarounds"] = _oneshot(model, recipe, tokens, p, widen=weights != p.compute_dtype)
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
        check_quantized(out_dir, p.describe())
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


def _main_device(p: Params) -> str:
    """Where the computation runs: llm-compressor's onload device for its algorithms (CUDA or
    MPS when present), the CPU for magnitude pruning."""
    if p.algorithm == "magnitude":
        return "cpu"
    from llmcompressor.utils.dev import get_main_device
    dev = get_main_device()
    if dev.type == "cuda":
        import torch
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return dev.type


def decoder_layers(model) -> list:
    """The modules llm-compressor's sequential pipeline runs one at a time: instances of the
    model's ``_no_split_modules`` classes (its own inference, ``infer_sequential_targets``)."""
    from llmcompressor.utils.pytorch.module import infer_sequential_targets
    names = set(infer_sequential_targets(model, None))
    return [m for m in model.modules() if type(m).__name__ in names]


def _oneshot(model, recipe, tokens, p: Params, widen: bool = False) -> list[str]:
    import contextlib

    import torch
    from llmcompressor import oneshot

    from slim.compat.llmc_cpu import cpu_pin_memory_workaround
    from slim.errors import SlimError
    from slim.models.upcast import Float32Compute

    mods = modifiers(recipe)
    kw = {}
    if tokens is not None:
        kw = {"dataset": calibration_dataset(tokens), "num_calibration_samples": int(tokens.shape[0]),
              "max_seq_length": int(tokens.shape[1]), "shuffle_calibration_samples": False}
    used = []
    up = Float32Compute(model, getattr(torch, p.compute_dtype), blocks=decoder_layers(model)) \
        if widen else contextlib.nullcontext()
    with cpu_pin_memory_workaround() as patched, up:
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
