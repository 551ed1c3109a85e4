"""method=fit: a GGUF type per tensor, chosen so the file fits a byte budget with the least
predicted quality loss, then written by llama.cpp's quantizer.

The stage plans four steps: the importance matrix (shared with every imatrix GGUF method),
``gguf_errors`` (each tensor × legal type quantized and dequantized by ggml on the real
weights, imatrix-weighted error), this step (the allocation: :mod:`slim.compress.fit_cost`
turns errors into predicted KLD per tensor × type, :mod:`slim.compress.gguf_allocate` solves the
multiple-choice knapsack under the budget) and ``quantize_gguf`` with one exact
``^name$`` tensor-type override per tensor (``llama_model_quantize``'s ``tt_overrides``, which
apply to token_embd/output too), read from this step's ``allocation.json``.

The budget is ``method.target_bytes`` (file bytes) when set, else the tier's room for weights:
usable memory × (1 − ``method.headroom``) − KV cache at the tier's context − runtime overhead
(the terms of :func:`slim.hardware.fit.fit_report`, so the result fits the tier by
construction). It is resolved when the plan is made and is part of the keys.

The file's ``general.file_type`` reads Q4_K_M: ``llama_model_quantize`` needs a quantized file
type to apply overrides, and every tensor's type is overridden; the report and
``quantize.json`` give the real per-tensor types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

VERSION = 2   # 2: NSR = max(weighted, unweighted)
LIBS = ("scipy", "numpy")


def _default_types():
    from slim.compress.gguf_error import default_candidates
    return default_candidates()


@dataclass
class Params:
    candidates: list = field(default_factory=_default_types)
    sample_rows: int = 256
    #: {tensor kind: KLD per unit NSR}; None: the shipped calibration (fit_sensitivity.json)
    sensitivity: Optional[dict] = None
    #: resolved at plan time (method.target_bytes, or the tier's room for weights)
    budget_bytes: Optional[int] = None
    budget_how: str = ""
    budget_key: str = "method.target_bytes"
    #: resolved at plan time with the sensitivity: where it came from, and the KLD it adds to
    sensitivity_source: str = ""
    kld_floor: float = 0.0

    def validate(self):
        from slim.compress.gguf_error import candidate_errors
        errs = candidate_errors(self.candidates)
        if self.budget_bytes is not None and int(self.budget_bytes) <= 0:
            errs.append(("budget_bytes", "must be > 0"))
        return errs

    @property
    def needs_calibration(self) -> bool:
        return True


def storage(p: Params) -> dict:
    """Sized by allocation (slim.hardware.estimate): the budget is known once the tier is."""
    return {"format": "gguf", "fit": {"candidates": list(p.candidates)}}


def plan_stage(planner, current, params: dict, index: int):
    from slim.errors import SlimError
    from slim.planview import model_arch
    from slim.steps.base import Artifact, Step

    if current.format not in ("hf", "safetensors"):
        raise SlimError(f"fit_gguf needs a 16-bit HF model as input, got {current.format}")
    from slim.steps.helpers import plain
    params = plain(params)
    p = Params(**params)
    f16 = planner.gguf_f16(current)
    cal = planner.calibration(planner.root_parent)
    im = planner.add(Step(f"imatrix:{current.step}", "imatrix",
                          {"subdir": current.file} if current.file else {},
                          deps={"model": current.step, "calibration": cal, "f16": f16.step},
                          desc="importance matrix from calibration activations"))
    from slim.compress.gguf_error import DEFAULT_CANDIDATES
    # one measurement of the default types (plus any others asked for) serves every candidate
    # subset and every budget: the subset is applied by the allocation, not the measurement
    measured = list(DEFAULT_CANDIDATES) + [t for t in p.candidates if t not in DEFAULT_CANDIDATES]
    err = planner.add(Step(f"gguf_errors:{current.step}", "gguf_errors",
                           {"candidates": measured, "sample_rows": int(p.sample_rows)},
                           deps={"f16": f16.step, "imatrix": im},
                           desc=f"error of each tensor × {len(measured)} types (ggml kernels)"))
    from omegaconf import OmegaConf

    from slim.compress.fit_cost import budget
    from slim.hardware.fit import kv_cache_type
    b, how, key = budget(OmegaConf.to_container(planner.cfg.method, resolve=True),
                         planner.cfg.hardware, model_arch(planner.cfg), kv_cache_type(planner.cfg))
    from slim.compress.fit_cost import least_bytes
    arch = model_arch(planner.cfg)
    need = least_bytes(arch, p.candidates)
    if need > b:   # certain before any work: the tensors alone at their smallest legal types
        raise SlimError(f"{key}: {b} bytes is too small for method=fit: the smallest legal type "
                        f"of every tensor needs at least {need} bytes (tensors and norms, "
                        f"before the GGUF's metadata); raise it or allow smaller types",
                        "invalid_config")
    if p.sensitivity is None:
        from slim.compress.fit_cost import shipped
        cal = shipped()
        sens, src, floor = dict(cal["kld_per_nsr"]), str(cal.get("source")), \
            float(cal.get("kld_floor") or 0.0)
    else:
        sens, src, floor = dict(p.sensitivity), "method params (stages[].params.sensitivity)", 0.0
    alloc = planner.add(Step(f"fit_gguf:{index}", "fit_gguf",
                             {**params, "sensitivity": sens, "budget_bytes": b, "budget_how": how,
                              "budget_key": key, "sensitivity_source": src,
                              "kld_floor": floor},
                             deps={"errors": err},
                             desc=f"types per tensor for {how}"))
    from slim.steps.helpers import gguf_lineage
    lineage = gguf_lineage(planner, index)
    pdeps, pfiles = planner.parent_files()
    sid = planner.add(Step(f"quantize_gguf:{index}", "quantize_gguf",
                           {"type": "Q4_K_M", "imatrix": True, "lineage": lineage},
                           deps={"f16": f16.step, "imatrix": im, "allocation": alloc, **pdeps},
                           files=pfiles, desc="llama_model_quantize with the allocated types"))
    return Artifact(sid, "gguf", "model.gguf")


def memory(params, model: dict) -> dict:
    from slim.steps.base import LIGHT_BASE
    return {"ram": LIGHT_BASE, "why": "error tables only (no weights)"}


def run(ctx):
    import json
    import re

    from slim.compress.fit_cost import by_layer, fixed_bytes, kind, options
    from slim.compress.gguf_allocate import allocate
    p = ctx.params
    errors = json.loads((ctx.inputs["errors"] / "errors.json").read_text())
    sens = dict(p.sensitivity or {"*": 1.0})
    opts = options(errors, sens, set(p.candidates))
    fixed = fixed_bytes(errors)
    a = allocate(opts, int(p.budget_bytes), fixed, budget_key=p.budget_key)
    floor = float(p.kld_floor)
    from collections import Counter
    hist = Counter(a.types.values())
    ctx.write_json("allocation.json", {
        "budget_bytes": int(p.budget_bytes), "budget_how": p.budget_how,
        "predicted_file_bytes": a.bytes, "fixed_bytes": fixed,
        "predicted_kld": floor + a.cost, "predicted_kld_over_floor": a.cost,
        "kld_floor": floor, "greedy_cost": a.greedy_cost, "greedy_bytes": a.greedy_bytes,
        "solver": a.solver, "sensitivity": dict(sens),
        "sensitivity_source": p.sensitivity_source,
        "types": a.types, "type_histogram": dict(sorted(hist.items())),
        "by_layer": by_layer(a.types),
        "cost_by_kind": {k: sum(opts[n][t][1] for n, t in a.types.items() if kind(n) == k)
                         for k in sorted({kind(n) for n in a.types})},
        "tensor_types": {f"^{re.escape(n)}$": t for n, t in sorted(a.types.items())}})
    ctx.log(f"allocation: {dict(hist)}; predicted {a.bytes} bytes of {p.budget_bytes}; "
            f"{a.solver}")
