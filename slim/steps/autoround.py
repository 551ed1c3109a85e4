"""AutoRound int-N weight quantization (``auto_round.AutoRound``), exported as compressed-tensors.

AutoRound tunes each block's rounding (and min/max clipping) by signed gradient descent
on the block's output error over calibration data, ``iters`` steps per block (upstream
default 200; CPU-friendly default here 20; ``iters: 0`` is plain round-to-nearest).
Calibration windows come from the ``calibration_set`` step's ``tokens.npy`` (a list of
``{input_ids, attention_mask}`` batches): auto-round never reaches for its hub dataset.

Group size per layer and 16-bit export follow :mod:`slim.compress.group_sizes` and
:mod:`slim.models.safetensors_folder`, as for llmc_oneshot: a layer whose input width
the group size does not divide gets a fallback size through
auto-round's ``layer_config`` (or stays 16-bit), and auto-round's fp32 copies of the
unquantized tensors (it upcasts on CPU) are cast back to the parent's 16-bit dtype.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from typing import Optional

VERSION = 1
LIBS = ("torch", "transformers", "auto-round", "compressed-tensors", "safetensors")

SCHEMES = ("W4A16", "W3A16", "W2A16", "W8A16")


@dataclass
class Params:
    scheme: str = "W4A16"
    group_size: int = 128
    group_fallbacks: list = field(default_factory=lambda: [64, 32])
    indivisible: str = "fallback"       # fallback | ignore | error
    ignore: list = field(default_factory=lambda: ["lm_head"])
    sym: bool = True
    iters: int = 20
    lr: Optional[float] = None          # None: auto-round's default (1 / iters)
    batch_size: int = 4
    max_samples: Optional[int] = None   # use at most this many calibration windows
    seed: int = 42
    compute_dtype: str = "bfloat16"     # auto-round tunes with autocast in bf16 on CPU
    export_dtype: str = "auto"          # auto: the parent's 16-bit dtype
    subdir: str = ""

    def validate(self):
        from slim.compress.group_sizes import POLICIES
        from slim.steps.helpers import check_sample_and_dtype_params
        errs = []
        if self.scheme not in SCHEMES:
            errs.append(("scheme", f"one of {', '.join(SCHEMES)} (weight-only integer)"))
        if not isinstance(self.group_size, int) or self.group_size < 1:
            errs.append(("group_size", "a positive integer"))
        if not all(isinstance(g, int) and g > 0 for g in self.group_fallbacks or []):
            errs.append(("group_fallbacks", "a list of positive integers"))
        if self.indivisible not in POLICIES:
            errs.append(("indivisible", f"one of {', '.join(POLICIES)}"))
        if not isinstance(self.iters, int) or self.iters < 0:
            errs.append(("iters", "0 (round-to-nearest) or more tuning steps per block"))
        if self.batch_size < 1:
            errs.append(("batch_size", "at least 1"))
        return errs + check_sample_and_dtype_params(self)

    @property
    def bits(self) -> int:
        return int(self.scheme[1])

    #: tuning runs each block on calibration windows
    needs_calibration = True


def plan_stage(planner, current, params: dict, index: int):
    from slim.errors import SlimError
    from slim.steps.base import Artifact, Step

    if current.format not in ("hf", "safetensors"):
        raise SlimError(f"autoround needs a 16-bit HF model as input, got a {current.format} "
                        f"artifact (a quantized model cannot be quantized again)")
    from slim.steps.helpers import plain
    params = plain(params)
    p = Params(**params)
    cal = planner.calibration(planner.root_parent)
    full = {**params, **({"subdir": current.file} if current.file else {})}
    sid = planner.add(Step(f"autoround:{index}", "autoround", full,
                           deps={"model": current.step, "calibration": cal},
                           desc=f"auto-round {p.scheme} g{p.group_size}, {p.iters} iters"))
    return Artifact(sid, "compressed-tensors", "model")


def run(ctx):
    import torch
    from transformers import AutoTokenizer

    from slim.errors import SlimError
    from slim.models.hf_io import load_causal_lm
    from slim.compress import group_sizes as G
    from slim.models import safetensors_folder as S
    from slim.steps import helpers as H

    p: Params = ctx.params
    torch.set_num_threads(ctx.threads)
    torch.manual_seed(p.seed)
    src = H.source_dir(ctx)
    export = H.export_dtype_of(src, p.export_dtype)
    t0 = time.time()
    model = load_causal_lm(src, p.compute_dtype)
    model.eval()
    tok = AutoTokenizer.from_pretrained(str(src))
    n_params = H.count_params(model)
    layers = G.linear_layers(model, ["Linear"], p.ignore)
    chosen, ignored = G.choose_group_sizes(layers, p.group_size, p.group_fallbacks, p.indivisible)
    if not chosen:
        raise SlimError(f"no layer can be quantized with group size {p.group_size}",
                        "group_size_indivisible")
    layer_config = {n: {"bits": p.bits, "group_size": g, "sym": p.sym}
                    for n, g in chosen.items() if g != p.group_size}
    layer_config.update({n: {"bits": 16} for n in list(ignored) + list(p.ignore)
                         if n in dict(model.named_modules())})
    tokens = H.load_tokens(ctx, p.max_samples)
    seq = int(tokens.shape[1])
    data = [{"input_ids": torch.from_numpy(tokens[i:i + 1].astype("int64")),
             "attention_mask": torch.ones(1, seq, dtype=torch.long)} for i in range(len(tokens))]
    args = {"scheme": p.scheme, "group_size": p.group_size, "sym": p.sym, "iters": p.iters,
            "nsamples": int(len(tokens)), "seqlen": seq, "batch_size": min(p.batch_size, len(tokens)),
            "seed": p.seed, "device_map": "cpu" if not torch.accelerator.is_available() else 0}
    if args["device_map"] != "cpu":
        # on an accelerator: auto-round's "offload features to CPU" mode (its cache device
        # becomes the CPU: the calibration inputs of each block wait in host RAM, not VRAM;
        # slower, same math). CPU builds: unchanged (and low_cpu_mem_usage is its default)
        args["low_gpu_mem_usage"] = True
    from slim.steps.base import note_device
    where = "cpu" if args["device_map"] == "cpu" else torch.accelerator.current_accelerator()
    note_device(f"torch {where} {p.compute_dtype}")
    if p.lr is not None:
        args["lr"] = p.lr
    work = ctx.out / "autoround-out"
    t1 = time.time()
    with H.stderr_to_stdout():
        from auto_round import AutoRound
        try:
            ar = AutoRound(model, tok, dataset=data, layer_config=layer_config or None, **args)
            ar.quantize_and_save(str(work), format="llm_compressor")
        except (ValueError, NotImplementedError) as e:
            raise SlimError(f"auto-round could not quantize/export: {str(e).splitlines()[0]}",
                            "export_quantization_failed") from None
    compress_s = time.time() - t1
    saved = [d.parent for d in work.rglob("config.json")]
    if len(saved) != 1:
        raise SlimError(f"auto-round wrote {len(saved)} model folders under {work.name}, "
                        f"expected one", "export_quantization_failed")
    out_dir = ctx.out / "model"
    shutil.move(str(saved[0]), str(out_dir))
    shutil.rmtree(work, ignore_errors=True)
    cast = S.cast_float_tensors(out_dir, export)
    H.check_quantized(out_dir, f"autoround {p.scheme} g{p.group_size}")
    info = {"engine": "auto-round", "algorithm": "autoround", "scheme": p.scheme,
            "recipe": {"AutoRound": {**{k: v for k, v in args.items()},
                                     "layer_config": layer_config,
                                     "format": "llm_compressor"}},
            "compute_dtype": p.compute_dtype, "export_dtype": export,
            "calibration": {"samples": int(len(tokens)), "seq_len": seq, "tokens": int(tokens.size)},
            "group_sizes": G.group_report(chosen),
            "group_size_policy": {"configured": p.group_size, "fallbacks": list(p.group_fallbacks),
                                  "indivisible": p.indivisible},
            "ignored_layers": {**{i: "configured ignore" for i in p.ignore}, **ignored}}
    if cast:
        info["cast_to_16bit_after_save"] = sorted(cast)
    qfile = out_dir / "quantization_config.json"
    if qfile.is_file():
        info["autoround_config"] = json.loads(qfile.read_text())
    info.update(S.folder_stats(out_dir, n_params))
    info["seconds"] = {"load": round(t1 - t0, 2), "compress": round(compress_s, 2)}
    info["libraries"] = H.library_versions(["auto-round", "compressed-tensors", "torch",
                                            "transformers"])
    ctx.write_json("compress.json", info)
