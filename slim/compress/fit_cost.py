"""method=fit's cost model: the predicted quality loss of quantizing one tensor to one type.

cost(tensor, T) = s_kind · NSR(tensor, T), where NSR is the measured imatrix-weighted
noise-to-signal ratio ``Σ imatrix_j (w − ŵ)² / Σ imatrix_j w²`` (:mod:`slim.compress.gguf_error`;
or the unweighted ratio where that is larger, :func:`nsr`)
and ``s_kind`` is the mean-KLD cost of one unit of summed NSR in a tensor of that kind
(attn_v, ffn_down, token_embd, ...), measured on the default model by ``bench/fit.py
--calibrate``: every tensor of one kind at a low type, all others at Q8_0, KLD measured, the
Q8_0 floor subtracted, divided by that kind's summed NSR (``fit_sensitivity.json``). The sum of
costs is then the allocation's predicted mean KLD over that floor (first order: independent
small perturbations add).

Weight-free (plan=true, architecture-only models): every tensor of a kind gets the prior NSR
of each type (ggml's error on seeded heavy-tailed weights, ``gguf_error.synthetic_nsr``: the
default model's own errors are no prior, its weights were distributed as Q4_1 and Q4_1/Q5_1
reproduce them almost exactly), so the allocation and its predicted size are an estimate,
labelled as such.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

SENSITIVITY_FILE = Path(__file__).with_name("fit_sensitivity.json")
#: GGUF metadata a quantized file adds over the tensors' own bytes (lineage keys, alignment):
#: kept free in the budget so the file, not only its tensors, fits
METADATA_MARGIN = 16 << 10
ALIGN = 32


def kind(name: str) -> str:
    """``blk.3.attn_v.weight`` -> ``attn_v``; ``token_embd.weight`` -> ``token_embd``."""
    n = re.sub(r"^blk\.\d+\.", "", name)
    return n[: -len(".weight")] if n.endswith(".weight") else n


def layer(name: str) -> int | None:
    m = re.match(r"^blk\.(\d+)\.", name)
    return int(m.group(1)) if m else None


@lru_cache(maxsize=1)
def shipped() -> dict:
    """The shipped calibration: ``{kld_per_nsr: {kind: s}, nsr_prior: {type: nsr}, source}``."""
    return json.loads(SENSITIVITY_FILE.read_text())


def weight_of(k: str, sens: dict) -> float:
    """The sensitivity of tensor kind ``k``; kinds the calibration model lacks borrow from their
    nearest measured kind: ``output`` from a tied ``token_embd`` (the default model's one tensor
    plays both roles), MoE experts and shared experts from their dense projection, a fused
    ``attn_qkv`` from the most sensitive of q/k/v, anything else the median block kind."""
    if k in sens:
        return float(sens[k])
    if "*" in sens:
        return float(sens["*"])
    base = re.sub(r"_(exps|shexp)$", "", k)
    if base in sens:
        return float(sens[base])
    if k == "output" and "token_embd" in sens:
        return float(sens["token_embd"])
    if k == "attn_qkv":
        qkv = [sens[x] for x in ("attn_q", "attn_k", "attn_v") if x in sens]
        if qkv:
            return float(max(qkv))
    block = sorted(float(v) for n, v in sens.items() if n not in ("token_embd", "output"))
    return block[len(block) // 2] if block else 1.0


def nsr(t: dict, ty: str) -> float:
    """Noise-to-signal ratio of tensor record ``t`` (errors.json) at type ``ty``: the larger of
    the imatrix-weighted and the unweighted ratio. The weighted one is what the output error of
    an average token sees, but an importance vector dominated by one massive-activation channel
    makes it blind to every other column (SmolLM2's blk.11.ffn_down measures 5e-5 at Q2_K
    weighted, 6e-2 unweighted); the larger of the two keeps such a tensor from being starved."""
    v = t["types"][ty]
    r = float(v["error"]) / (float(t["signal"]) or 1.0)
    if "error_plain" in v and t.get("signal_plain"):
        r = max(r, float(v["error_plain"]) / float(t["signal_plain"]))
    return r


def options(errors: dict, sensitivity: dict, candidates=None) -> dict[str, dict[str, tuple[int, float]]]:
    """``{tensor: {type: (bytes, cost)}}`` from a gguf_errors ``errors.json``."""
    out = {}
    for name, t in errors["tensors"].items():
        s = weight_of(kind(name), sensitivity)
        out[name] = {ty: (int(v["bytes"]), s * nsr(t, ty))
                     for ty, v in t["types"].items() if candidates is None or ty in candidates}
    return out


def fixed_bytes(errors: dict) -> int:
    """File bytes outside the quantizable tensors (metadata, norms) plus padding and margin."""
    n = len(errors["tensors"])
    return int(errors["file_bytes"]) - int(errors["quantizable_f16_bytes"]) + ALIGN * n \
        + METADATA_MARGIN


def prior_options(shapes, candidates, sensitivity: dict, prior: dict,
                  has_imatrix: bool = True) -> tuple[dict, int]:
    """Weight-free options from tensor shapes ``[(name, rows, cols)]`` (gguf names, ``cols`` =
    row length) and the per-type prior NSR; returns (options, fixed bytes: 1-D tensors in F32)."""
    from slim.compress.gguf_error import BLOCKS, tensor_bytes
    out, fixed = {}, METADATA_MARGIN
    for name, rows, cols in shapes:
        if rows == 1 or "ffn_gate_inp" in name or "norm" in name:
            fixed += 4 * rows * cols
            continue
        s = weight_of(kind(name), sensitivity)
        out[name] = {t: (tensor_bytes(t, rows, cols), s * float(prior[t]))
                     for t in candidates if t in prior and cols % BLOCKS[t][0] == 0}
        fixed += ALIGN
    return out, fixed


def by_layer(types: dict[str, str]) -> dict:
    """``{kind: [type of layer 0, 1, ...]}`` plus the non-layer tensors under their own kind."""
    rows: dict[str, list] = {}
    n = 1 + max((layer(k) or 0) for k in types)
    for name, t in types.items():
        i = layer(name)
        if i is None:
            rows[kind(name)] = [t]
        else:
            rows.setdefault(kind(name), [None] * n)[i] = t
    return rows


def budget(method: dict, hw, arch: dict, kv_dtype: str | None = None) -> tuple[int, str, str]:
    """(bytes, how, key) of method=fit's file budget: ``method.target_bytes`` when set, else the
    tier's room for weights (:func:`slim.hardware.fit.weights_budget` with ``method.headroom``);
    ``key`` names what to change when it is too small."""
    from slim.errors import SlimError
    from slim.hardware.fit import weights_budget
    from slim.units import fmt_bytes
    tb = method.get("target_bytes")
    if tb is not None:
        if not isinstance(tb, int) or isinstance(tb, bool) or tb <= 0:
            raise SlimError(f"method.target_bytes must be a positive number of bytes, got {tb!r}",
                            "invalid_config")
        return int(tb), f"method.target_bytes={int(tb)} ({fmt_bytes(int(tb))})", \
            "method.target_bytes"
    b, how = weights_budget(hw, arch, float(method.get("headroom") or 0.0), kv_dtype)
    key = (f"the budget of hardware={hw.get('name') if isinstance(hw, dict) else hw.name} "
           f"(set method.target_bytes, a shorter hardware.context_length or a bigger tier)")
    if b <= 0:
        raise SlimError(f"method=fit: {how}: no room for weights; {key}", "invalid_config")
    return b, how, key


def estimate_allocation(arch: dict, storage: dict) -> dict:
    """Weight-free allocation for ``storage = {format: gguf, fit: {candidates, budget,
    budget_how, budget_key}}``: estimate_weights' summary plus ``allocation``."""
    from slim.compress.gguf_allocate import allocate
    from slim.hardware.estimate import param_shapes
    f = storage["fit"]
    cal = shipped()
    shapes = param_shapes(arch)
    opts, fixed = prior_options(shapes, f["candidates"], cal["kld_per_nsr"], cal["nsr_prior"])
    a = allocate(opts, int(f["budget"]), fixed, f.get("budget_key") or "method.target_bytes")
    per_type: dict[str, dict[str, int]] = {}
    n_params = 0
    for name, r, c in shapes:
        t = a.types.get(name, "F32")
        b = opts[name][t][0] if name in opts else 4 * r * c
        d = per_type.setdefault(t, {"tensors": 0, "params": 0, "bytes": 0})
        d["tensors"] += 1
        d["params"] += r * c
        d["bytes"] += b
        n_params += r * c
    total = sum(d["bytes"] for d in per_type.values())
    return {"method": "fit", "format": "gguf", "bytes": total, "params": n_params,
            "bpw": 8.0 * total / n_params, "per_type": per_type, "approximate": True,
            "allocation": {"types": a.types, "by_layer": by_layer(a.types),
                           "budget": int(f["budget"]), "budget_how": f.get("budget_how"),
                           "predicted_kld_over_floor": a.cost, "solver": a.solver,
                           "note": "estimate without weights: every tensor gets the prior error per "
                                   "type (" + str(cal.get("nsr_prior_source", "?")) + ") × its "
                                   "kind's sensitivity (" + str(cal.get("source")) + ")"}}


def least_bytes(arch: dict, candidates) -> int:
    """Bytes of every tensor at its smallest legal candidate type, norms in F32: a lower bound
    on any allocation's file, known from the architecture alone."""
    from slim.compress.gguf_error import BLOCKS, tensor_bytes
    from slim.hardware.estimate import param_shapes
    total = 0
    for name, rows, cols in param_shapes(arch):
        if rows == 1 or "ffn_gate_inp" in name or "norm" in name:
            total += 4 * rows * cols
            continue
        legal = [tensor_bytes(t, rows, cols) for t in candidates if cols % BLOCKS[t][0] == 0]
        total += min(legal) if legal else 2 * rows * cols
    return total


def type_runs(types: list) -> list[tuple[int, int, str]]:
    """Consecutive layers with the same type as (first, last, type): how allocations are printed."""
    runs: list[list] = []
    for i, t in enumerate(types):
        if runs and runs[-1][2] == t:
            runs[-1][1] = i
        else:
            runs.append([i, i, t])
    return [tuple(r) for r in runs]
