"""A smaller student derived from an HF parent by structured pruning.

Two levers, usable together:

- **depth**: keep a subset of the decoder layers — ``keep_layers: every_other``
  (layers 0, 2, 4, …), an explicit list of indices, or ``drop_fraction: f`` with
  ``drop_by: spread`` (keep evenly spaced layers, always the first and the last)
  or ``drop_by: importance`` (drop the layers that change the hidden state least
  on the calibration windows: block influence ``1 − cos(h_in, h_out)``, as in
  ShortGPT, arXiv:2403.03853);
- **width**: ``mlp_keep: f`` keeps that fraction of every MLP's intermediate
  channels, the ones with the largest ``‖gate_j‖·‖up_j‖·‖down_:,j‖``, rounded up
  to a multiple of ``mlp_multiple`` (256 keeps llama.cpp's k-quants applicable).

The student is a plain HF folder (``model/``) of the parent's architecture with
``num_hidden_layers`` / ``intermediate_size`` (and ``layer_types`` where the
config has it) rewritten, so transformers and llama.cpp's converter load it as
any other model. ``student.json`` records what was kept and the parameter counts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

VERSION = 1
#: torch OpenMP threads wait passively (the executor sets OMP_WAIT_POLICY; shared CPUs)
OMP_PASSIVE = True
LIBS = ("torch", "transformers", "safetensors", "numpy")

_DROP_BY = ("spread", "importance")
_MLP_ROWS = ("gate_proj", "up_proj", "w1", "w3")   # output rows = intermediate channels
_MLP_COLS = ("down_proj", "w2")                     # input columns = intermediate channels


@dataclass
class Params:
    keep_layers: Union[str, list, None] = None    # "every_other" | [indices] | None
    drop_fraction: Optional[float] = None         # fraction of layers to drop
    drop_by: str = "spread"                       # how drop_fraction picks: spread | importance
    mlp_keep: float = 1.0                         # fraction of MLP channels to keep
    mlp_multiple: int = 256                       # round kept MLP width up to a multiple of this
    dtype: str = "float16"
    importance_samples: int = 16                  # calibration windows for drop_by=importance
    subdir: str = ""                              # HF folder inside the input step's output

    def validate(self):
        errs = []
        kl = self.keep_layers
        if kl is not None and self.drop_fraction is not None:
            errs.append(("keep_layers", "give keep_layers or drop_fraction, not both"))
        if isinstance(kl, str):
            if kl != "every_other":
                errs.append(("keep_layers", f"{kl!r}: must be 'every_other' or a list of layer "
                                            f"indices"))
        elif kl is not None:
            if not isinstance(kl, (list, tuple)) or not kl or \
                    not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in kl):
                errs.append(("keep_layers", "must be a non-empty list of layer indices ≥ 0"))
            elif len(set(kl)) != len(kl):
                errs.append(("keep_layers", "lists a layer twice"))
        if self.drop_fraction is not None and not (
                isinstance(self.drop_fraction, (int, float)) and 0 <= self.drop_fraction < 1):
            errs.append(("drop_fraction", f"must be in [0, 1) (got {self.drop_fraction})"))
        if self.drop_by not in _DROP_BY:
            errs.append(("drop_by", f"must be one of {', '.join(_DROP_BY)}"))
        if not isinstance(self.mlp_keep, (int, float)) or not 0 < self.mlp_keep <= 1:
            errs.append(("mlp_keep", f"must be in (0, 1] (got {self.mlp_keep})"))
        if not isinstance(self.mlp_multiple, int) or self.mlp_multiple < 1:
            errs.append(("mlp_multiple", "must be a positive integer"))
        if self.dtype not in ("float16", "bfloat16"):
            errs.append(("dtype", "must be float16 or bfloat16"))
        if kl is None and self.drop_fraction is None and self.mlp_keep == 1:
            errs.append(("", "nothing to prune: set keep_layers, drop_fraction or mlp_keep < 1"))
        if not isinstance(self.importance_samples, int) or self.importance_samples < 1:
            errs.append(("importance_samples", "must be a positive integer"))
        return errs

    @property
    def needs_calibration(self) -> bool:
        return self.drop_fraction is not None and self.drop_by == "importance"


def deployed_arch(p: Params, arch: dict) -> dict:
    """The student's shape, by the same rules the step uses (read by slim.hardware.deployed);
    layer choice by importance picks which layers, not how many, so zeros stand in for it."""
    arch = dict(arch)
    n = arch["num_hidden_layers"]
    arch["num_hidden_layers"] = len(choose_layers(p, n, [0.0] * n))
    if p.mlp_keep < 1 and arch.get("intermediate_size"):
        arch["intermediate_size"] = kept_mlp_width(arch["intermediate_size"], p.mlp_keep,
                                                   p.mlp_multiple)
    return arch


def plan_stage(planner, current, params: dict, index: int):
    from slim.errors import SlimError
    from slim.steps.base import Artifact, Step

    if current.format not in ("hf", "safetensors"):
        raise SlimError(f"student needs a 16-bit HF model as input, got {current.format}")
    from slim.steps.helpers import plain
    params = plain(params)   # Hydra hands lists over as ListConfig: the step spec is JSON
    p = Params(**params)
    deps = {"model": current.step}
    if p.needs_calibration:
        deps["calibration"] = planner.calibration(planner.root_parent)
    what = []
    if p.keep_layers is not None:
        what.append(f"keep layers {p.keep_layers}")
    if p.drop_fraction is not None:
        what.append(f"drop {p.drop_fraction:.0%} of layers ({p.drop_by})")
    if p.mlp_keep < 1:
        what.append(f"keep {p.mlp_keep:.0%} of MLP channels")
    sid = planner.add(Step(f"student:{index}", "student",
                           {**params, **({"subdir": current.file} if current.file else {})},
                           deps=deps, desc="structured pruning: " + ", ".join(what)))
    return Artifact(sid, "hf", "model")


# -- layer selection ------------------------------------------------------------------------

def spread(n_layers: int, n_keep: int) -> list[int]:
    """``n_keep`` evenly spaced layer indices out of ``n_layers``, first and last included."""
    import numpy as np
    if n_keep >= n_layers:
        return list(range(n_layers))
    if n_keep == 1:
        return [0]
    return sorted({int(round(x)) for x in np.linspace(0, n_layers - 1, n_keep)})


def block_influence(model, tokens, n_samples: int, log=print) -> list[float]:
    """Per layer: mean over tokens of 1 − cos(hidden in, hidden out) on calibration windows."""
    import numpy as np
    import torch
    layers = model.model.layers
    acc = torch.zeros(len(layers), dtype=torch.float64)
    hooks = []
    for k, layer in enumerate(layers):
        def hook(mod, args, kwargs, out, _k=k):
            h_in = (args[0] if args else kwargs["hidden_states"]).double()
            h_out = (out[0] if isinstance(out, tuple) else out).double()
            cos = torch.nn.functional.cosine_similarity(h_in, h_out, dim=-1)
            acc[_k] += (1 - cos).sum()
        hooks.append(layer.register_forward_hook(hook, with_kwargs=True))
    count = 0
    try:
        with torch.no_grad():
            for i in range(min(n_samples, len(tokens))):
                ids = torch.from_numpy(tokens[i:i + 1].astype(np.int64))
                model(ids)
                count += ids.numel()
    finally:
        for h in hooks:
            h.remove()
    return (acc / max(count, 1)).tolist()


def choose_layers(p: Params, n_layers: int, influence: Optional[list[float]] = None) -> list[int]:
    from slim.errors import SlimError
    if p.keep_layers == "every_other":
        keep = list(range(0, n_layers, 2))
    elif isinstance(p.keep_layers, (list, tuple)):
        bad = [i for i in p.keep_layers if i >= n_layers]
        if bad:
            raise SlimError(f"student.keep_layers: the model has {n_layers} layers (0–{n_layers - 1});"
                            f" {bad} do not exist", "bad_params")
        keep = sorted(p.keep_layers)
    elif p.drop_fraction is not None:
        n_keep = max(1, n_layers - int(round(p.drop_fraction * n_layers)))
        if p.drop_by == "importance":
            order = sorted(range(n_layers), key=lambda k: influence[k])   # least influential first
            dropped = set(order[:n_layers - n_keep])
            keep = [k for k in range(n_layers) if k not in dropped]
        else:
            keep = spread(n_layers, n_keep)
    else:
        keep = list(range(n_layers))
    return keep


# -- MLP width ------------------------------------------------------------------------------

def kept_mlp_width(width: int, keep_frac: float, multiple: int) -> int:
    """MLP channels kept: ``keep_frac`` of ``width`` rounded up, then up to a multiple of
    ``multiple`` when the full width is one (used by the step and by plan=true's sizing)."""
    k = int(-(-keep_frac * width // 1))
    return min(width, -(-k // multiple) * multiple) if width % multiple == 0 else k


def mlp_channels(layer, keep_frac: float, multiple: int):
    """Indices (sorted) of the MLP channels of one decoder layer to keep, or None (no MLP found)."""
    import torch
    mlp = getattr(layer, "mlp", None)
    if mlp is None:
        return None
    rows = [getattr(mlp, n).weight for n in _MLP_ROWS if hasattr(mlp, n)]
    cols = [getattr(mlp, n).weight for n in _MLP_COLS if hasattr(mlp, n)]
    if not rows or not cols:
        return None
    width = rows[0].shape[0]
    k = kept_mlp_width(width, keep_frac, multiple)
    score = torch.ones(width, dtype=torch.float64)
    for w in rows:
        score *= w.double().norm(dim=1)
    for w in cols:
        score *= w.double().norm(dim=0)
    return torch.sort(torch.topk(score, k).indices).values


# -- the step -------------------------------------------------------------------------------

def _null():
    import contextlib
    return contextlib.nullcontext()


def build_student(model, p: Params, tokens=None, log=print):
    """(student model, summary) from a loaded HF causal LM (float32, or 16-bit: then the
    importance forward computes in float32 module by module)."""
    import copy

    import torch
    from transformers import AutoModelForCausalLM

    from slim.errors import SlimError

    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise SlimError(f"student: {type(model).__name__} has no model.layers; only decoder-only "
                        f"models with a layer list can be pruned by layer", "unsupported_architecture")
    n = len(layers)
    influence = None
    if p.needs_calibration:
        if tokens is None:
            raise SlimError("student: drop_by=importance needs calibration tokens", "bad_params")
        log(f"block influence on {min(p.importance_samples, len(tokens))} calibration windows")
        from slim.models.upcast import Float32Compute
        widen = {q.dtype for q in model.parameters()} != {torch.float32}
        with Float32Compute(model) if widen else _null():   # 16-bit weights, float32 math
            influence = block_influence(model, tokens, p.importance_samples, log)
    keep = choose_layers(p, n, influence)
    cfg = copy.deepcopy(model.config)
    cfg.num_hidden_layers = len(keep)
    if getattr(cfg, "layer_types", None):
        cfg.layer_types = [cfg.layer_types[k] for k in keep]
    if hasattr(cfg, "max_window_layers") and isinstance(cfg.max_window_layers, int):
        cfg.max_window_layers = min(cfg.max_window_layers, len(keep))

    sd = model.state_dict()
    new_sd = {}
    prefix = "model.layers."
    width_before = getattr(cfg, "intermediate_size", None)
    channels = {}
    if p.mlp_keep < 1:
        for new_i, old_i in enumerate(keep):
            ch = mlp_channels(layers[old_i], p.mlp_keep, p.mlp_multiple)
            if ch is None:
                raise SlimError(f"student: layer {old_i} has no gate/up/down MLP to shrink",
                                "unsupported_architecture")
            channels[old_i] = ch
        widths = {len(c) for c in channels.values()}
        if len(widths) != 1:
            raise SlimError("student: MLP widths differ across layers", "unsupported_architecture")
        cfg.intermediate_size = widths.pop()
    for name, t in sd.items():
        if not name.startswith(prefix):
            new_sd[name] = t
            continue
        idx, rest = name[len(prefix):].split(".", 1)
        old_i = int(idx)
        if old_i not in keep:
            continue
        if old_i in channels:
            parts = rest.split(".")
            if len(parts) >= 3 and parts[0] == "mlp":
                ch = channels[old_i]
                if parts[1] in _MLP_ROWS:
                    t = t.index_select(0, ch)
                elif parts[1] in _MLP_COLS and parts[-1] == "weight":
                    t = t.index_select(1, ch)
        new_sd[f"{prefix}{keep.index(old_i)}.{rest}"] = t   # load_state_dict copies
    from transformers.initialization import no_init_weights
    with no_init_weights():   # every weight is loaded below; random init is only slow
        # the parent's own dtype: float32, or its 16-bit dtype (copied slices, no arithmetic;
        # save_16bit's cast gives the same bits either way)
        student = AutoModelForCausalLM.from_config(cfg, dtype=next(model.parameters()).dtype)
    missing, unexpected = student.load_state_dict(new_sd, strict=False)
    student.tie_weights()
    missing = [m for m in missing if not (m == "lm_head.weight" and cfg.tie_word_embeddings)]
    if missing or unexpected:
        raise SlimError(f"student: pruned weights do not fit the architecture (missing "
                        f"{missing[:3]}, unexpected {unexpected[:3]})", "student_failed")
    student.generation_config = copy.deepcopy(model.generation_config)
    before = sum(t.numel() for t in model.parameters())
    after = sum(t.numel() for t in student.parameters())
    summary = {
        "layers_before": n, "layers_after": len(keep), "kept_layers": keep,
        "dropped_layers": [k for k in range(n) if k not in keep],
        "layer_selection": ("every_other" if p.keep_layers == "every_other" else
                            "explicit" if p.keep_layers is not None else
                            f"drop_fraction={p.drop_fraction} by {p.drop_by}"
                            if p.drop_fraction is not None else "all"),
        "block_influence": [round(x, 6) for x in influence] if influence else None,
        "mlp_width_before": width_before, "mlp_width_after": getattr(cfg, "intermediate_size", None),
        "mlp_keep": p.mlp_keep, "mlp_score": "‖gate_j‖·‖up_j‖·‖down_:,j‖" if channels else None,
        "params_before": before, "params_after": after,
        "params_ratio": round(after / before, 6),
    }
    return student, summary


def run(ctx):
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    from slim.models.hf_io import load_causal_lm, save_16bit

    torch.set_num_threads(ctx.threads)
    p = ctx.params
    src = ctx.inputs["model"] / p.subdir if p.subdir else ctx.inputs["model"]
    # a 16-bit parent stays 16-bit (no float32 copy): block influence computes each module in
    # float32 (slim.models.upcast) and the student is cut from the 16-bit weights; the saved
    # student is bit-identical to the float32 path's
    from slim.models.hf_io import source_dtype
    from slim.models.upcast import storage_dtype
    weights = storage_dtype(source_dtype(src), "float32")
    model = load_causal_lm(src, weights)
    model.eval()
    from slim.steps.base import note_device
    note_device("torch cpu float32" + (f" (weights {weights})" if weights != "float32" else ""))
    tokens = None
    if "calibration" in ctx.inputs:
        tokens = np.load(ctx.inputs["calibration"] / "tokens.npy")
    student, summary = build_student(model, p, tokens, ctx.log)
    ctx.log(f"{summary['layers_before']} -> {summary['layers_after']} layers, "
            f"{summary['params_before'] / 1e6:.1f}M -> {summary['params_after'] / 1e6:.1f}M params")
    tok = AutoTokenizer.from_pretrained(str(src))
    save_16bit(student, tok, ctx.out / "model", p.dtype)
    summary["dtype"] = p.dtype
    ctx.write_json("student.json", summary)
    ctx.write_json("compress.json", {"engine": "structured pruning (layers / MLP channels)",
                                     "n_params": summary["params_after"]})
