"""GGUF quantization with ``llama_cpp.llama_model_quantize`` (llama.cpp's own quantizer).

The importance matrix (from the ``imatrix`` step) is passed as llama.cpp's
``llama_model_imatrix_data`` array; lineage goes into the GGUF metadata through
``kv_overrides`` (``general.base_model.*`` and ``slim.*`` keys), including
``slim.parent.digest``: the same digest of the parent's files that the report's
``parent.digest`` holds, so a GGUF found on its own still names its parent.
The report's own digest cannot go in: the report records this file's sha256,
so the GGUF links to the report through the signed attestation instead.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Optional

VERSION = 2
LIBS = ("llama-cpp-python", "llama.cpp-toolchain", "numpy")

#: quant type name -> llama_ftype value (llama.h; ``llama_cpp.LLAMA_FTYPE_MOSTLY_<name>``)
FTYPES = {"Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10, "Q3_K_S": 11,
          "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16, "Q5_K_M": 17,
          "Q6_K": 18, "IQ2_XS": 20, "IQ3_XXS": 23, "IQ4_NL": 25, "IQ3_M": 27, "IQ2_M": 29,
          "IQ4_XS": 30, "F16": 1, "BF16": 32}


@dataclass
class Params:
    type: str = "Q4_K_M"
    imatrix: bool = True
    pure: bool = False
    tensor_types: dict = field(default_factory=dict)   # regex on tensor name -> ggml type
    lineage: dict = field(default_factory=dict)        # written into GGUF metadata
    output_tensor_type: Optional[str] = None

    def validate(self):
        import gguf
        errs = []
        from slim.hardware.estimate import GGUF_FTYPES, ftype_needs_imatrix
        if self.type not in FTYPES:
            errs.append(("type", f"unknown GGUF quant type {self.type!r}; known: "
                                 f"{', '.join(sorted(FTYPES))}"))
        elif not self.imatrix and ftype_needs_imatrix(self.type):
            errs.append(("imatrix", f"llama.cpp refuses {self.type} without an importance matrix "
                                    f"(its {GGUF_FTYPES[self.type.lower()]} tensors need one); "
                                    f"set imatrix: true or pick another type"))
        for pat, t in (self.tensor_types or {}).items():
            if t not in gguf.GGMLQuantizationType.__members__:
                errs.append((f"tensor_types.{pat}", f"unknown ggml type {t!r}"))
        if self.output_tensor_type and \
                self.output_tensor_type not in gguf.GGMLQuantizationType.__members__:
            errs.append(("output_tensor_type", f"unknown ggml type {self.output_tensor_type!r}"))
        return errs

    @property
    def needs_calibration(self) -> bool:
        return bool(self.imatrix)   # the importance matrix is measured on calibration text


def storage(p: Params) -> dict:
    """llama.cpp's per-tensor types for this file type (read by slim.hardware.deployed)."""
    from slim.hardware.estimate import gguf_storage
    return gguf_storage(p.type, p.imatrix)


def plan_stage(planner, current, params: dict, index: int):
    from slim.errors import SlimError
    from slim.steps.base import Artifact, Step

    if current.format not in ("hf", "safetensors"):
        raise SlimError(f"quantize_gguf needs a 16-bit HF model as input, got {current.format}")
    from slim.steps.helpers import plain
    params = plain(params)   # a CLI override (tensor_types={...}) arrives as a DictConfig
    p = Params(**params)
    f16 = planner.gguf_f16(current)
    deps = {"f16": f16.step}
    if p.imatrix:
        cal = planner.calibration(planner.root_parent)
        deps["imatrix"] = planner.add(Step(f"imatrix:{current.step}", "imatrix",
                                           {"subdir": current.file} if current.file else {},
                                           deps={"model": current.step, "calibration": cal,
                                                 "f16": f16.step},
                                           desc="importance matrix from calibration activations"))
    from slim.steps.helpers import gguf_lineage
    lineage = gguf_lineage(planner, index)
    pdeps, pfiles = planner.parent_files()
    sid = planner.add(Step(f"quantize_gguf:{index}", "quantize_gguf",
                           {**params, "lineage": lineage}, deps={**deps, **pdeps}, files=pfiles,
                           desc=f"llama_model_quantize {p.type}"
                                f"{' + imatrix' if p.imatrix else ''}"))
    return Artifact(sid, "gguf", "model.gguf")


def _kv_overrides(lineage: dict):
    import llama_cpp as lc
    arr = (lc.llama_model_kv_override * (len(lineage) + 1))()
    for i, (k, v) in enumerate(sorted(lineage.items())):
        o = arr[i]
        o.key = k.encode()[:127]
        if isinstance(v, bool):
            o.tag, o.value.val_bool = lc.LLAMA_KV_OVERRIDE_TYPE_BOOL, v
        elif isinstance(v, int):
            o.tag, o.value.val_i64 = lc.LLAMA_KV_OVERRIDE_TYPE_INT, v
        elif isinstance(v, float):
            o.tag, o.value.val_f64 = lc.LLAMA_KV_OVERRIDE_TYPE_FLOAT, v
        else:
            o.tag, o.value.val_str = lc.LLAMA_KV_OVERRIDE_TYPE_STR, str(v).encode()[:127]
    arr[len(lineage)].key = b""
    return arr


def _imatrix(npz_path):
    import numpy as np
    import llama_cpp as lc
    data = np.load(npz_path)
    names = sorted(data.files)
    keep = []  # keep buffers alive during the call
    arr = (lc.llama_model_imatrix_data * (len(names) + 1))()
    for i, n in enumerate(names):
        a = np.ascontiguousarray(data[n], dtype=np.float32)
        nb = n.encode()
        keep += [a, nb]
        arr[i].name = nb
        arr[i].data = a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        arr[i].size = a.size
    arr[len(names)].name = None
    return arr, keep


def _tensor_overrides(tt: dict):
    import gguf
    import llama_cpp as lc
    arr = (lc.llama_model_tensor_override * (len(tt) + 1))()
    keep = []
    for i, (pat, t) in enumerate(sorted(tt.items())):
        b = pat.encode()
        keep.append(b)
        arr[i].pattern = b
        arr[i].type = int(gguf.GGMLQuantizationType[t])
    arr[len(tt)].pattern = None
    return arr, keep


def gguf_stats(path) -> dict:
    """Per-tensor type histogram and bits per weight of a GGUF file."""
    import os
    from collections import Counter

    from slim.models.gguf_header import read_gguf_header
    _, tensors = read_gguf_header(path)
    hist, by_bytes = Counter(), Counter()
    n_el = n_bytes = 0
    for t in tensors:
        hist[t.type_name] += 1
        by_bytes[t.type_name] += t.n_bytes
        n_el += t.n_elements
        n_bytes += t.n_bytes
    size = os.path.getsize(path)
    return {"tensor_types": dict(sorted(hist.items())), "bytes_by_type": dict(sorted(by_bytes.items())),
            "n_params": n_el, "tensor_bytes": n_bytes, "file_bytes": size,
            "bpw": round(8 * n_bytes / n_el, 4), "file_bpw": round(8 * size / n_el, 4)}


def quantize(f16_path, out_path, p: Params, threads: int, imatrix_npz=None) -> None:
    import os

    import gguf
    import llama_cpp as lc

    from slim.errors import SlimError
    qp = lc.llama_model_quantize_default_params()
    qp.nthread = threads
    qp.ftype = FTYPES[p.type]
    qp.pure = p.pure
    qp.allow_requantize = False
    if p.output_tensor_type:
        qp.output_tensor_type = int(gguf.GGMLQuantizationType[p.output_tensor_type])
    keep = []
    if imatrix_npz is not None:
        im, k = _imatrix(imatrix_npz)
        keep += [im, k]
        qp.imatrix = ctypes.cast(im, ctypes.POINTER(lc.llama_model_imatrix_data))
    if p.lineage:
        kv = _kv_overrides(p.lineage)
        keep.append(kv)
        qp.kv_overrides = ctypes.cast(kv, ctypes.POINTER(lc.llama_model_kv_override))
    if p.tensor_types:
        tt, k = _tensor_overrides(p.tensor_types)
        keep += [tt, k]
        qp.tt_overrides = ctypes.cast(tt, ctypes.POINTER(lc.llama_model_tensor_override))
    rc = lc.llama_model_quantize(str(f16_path).encode(), str(out_path).encode(), ctypes.byref(qp))
    if rc != 0 or not os.path.exists(out_path):
        raise SlimError(f"llama_model_quantize returned {rc} for {p.type}", "quantize_failed")



def memory(params, model: dict) -> dict:
    """llama.cpp's quantizer streams the 16-bit GGUF tensor by tensor (float32 work buffers
    for one tensor at a time): measured 0.66 bytes/param of RSS at 1.07B."""
    from slim.steps.base import LIGHT_BASE
    return {"ram": model["params"] + LIGHT_BASE,
            "why": "one tensor at a time from the mapped 16-bit GGUF (≈1 byte/param)"}

def run(ctx):
    from slim.signing.attest import files_sha256, parent_digest
    from slim.steps.helpers import stderr_to_stdout

    p = ctx.params
    if "parent" in ctx.inputs:
        p.lineage = {**p.lineage,
                     "slim.parent.digest": parent_digest(files_sha256(ctx.inputs["parent"]))}
    if "allocation" in ctx.inputs:   # method=fit: one exact ^name$ pattern per tensor
        import json
        alloc = json.loads((ctx.inputs["allocation"] / "allocation.json").read_text())
        p.tensor_types = {**alloc["tensor_types"], **(p.tensor_types or {})}
    out = ctx.out / "model.gguf"
    im = ctx.inputs["imatrix"] / "imatrix.npz" if "imatrix" in ctx.inputs else None
    with stderr_to_stdout():  # llama.cpp's C-level chatter: the step's log
        quantize(ctx.inputs["f16"] / "model.gguf", out, p, ctx.threads, im)
    stats = gguf_stats(out)
    stats.update({"type": p.type, "imatrix": im is not None, "pure": p.pure,
                  "tensor_overrides": p.tensor_types})
    ctx.write_json("quantize.json", stats)
