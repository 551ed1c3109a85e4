"""An onnxruntime-genai model folder: ``genai_config.json`` + ``model.onnx`` (+ external data).

What the export step, the verifier and the report read from such a folder, without loading
weights: the tensor inventory (:func:`onnx_stats`, from the graph's initializer headers with
``onnx.load(load_external_data=False)``) and slim's lineage keys in ``model.onnx``'s
``metadata_props`` (:func:`read_lineage` / :func:`write_lineage`, the ONNX counterpart of the
GGUF's ``slim.parent.digest``).

MatMulNBits weights are stored as uint8 blobs ``[N, n_blocks, blob_bytes]`` (``*_Q4``/``*_Q8``
for the default quantizer, ``*_Q4G32``... for rtn/k_quant): their parameter count is
``N × n_blocks × blob_bytes × 8 / bits`` (the padded K), scales and zero points are not
parameters. A tied embedding quantized with the lm_head (GatherBlockQuantized) is one tensor.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

from slim.errors import SlimError

GENAI_CONFIG = "genai_config.json"

#: onnx TensorProto data types -> (name, bytes per element; 0 = packed sub-byte)
_DTYPES = {1: ("float32", 4), 2: ("uint8", 1), 3: ("int8", 1), 5: ("int16", 2), 6: ("int32", 4),
           7: ("int64", 8), 10: ("float16", 2), 11: ("float64", 8), 16: ("bfloat16", 2),
           21: ("uint4", 0), 22: ("int4", 0)}
_NBITS = re.compile(r"\.weight_Q(4|8)(G\d+)?$")
_QAUX = re.compile(r"\.weight_(scales?|zp|zero_points)$")


def is_onnx_folder(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and (p / GENAI_CONFIG).is_file()


def genai_config(folder: str | os.PathLike) -> dict:
    p = Path(folder) / GENAI_CONFIG
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise SlimError(f"{p}: not a readable onnxruntime-genai config ({e})",
                        "model_load_failed") from None


def arch_from_genai_config(folder: str | os.PathLike) -> dict:
    """The decoder's shape as genai_config.json records it (what a fit on a tier needs: layers,
    KV heads, head size, context), under Hugging Face's key names."""
    m = genai_config(folder).get("model") or {}
    d = m.get("decoder") or {}
    return {"model_type": m.get("type"), "hidden_size": d.get("hidden_size"),
            "num_hidden_layers": d.get("num_hidden_layers"),
            "num_attention_heads": d.get("num_attention_heads"),
            "num_key_value_heads": d.get("num_key_value_heads"), "head_dim": d.get("head_size"),
            "vocab_size": m.get("vocab_size"), "max_position_embeddings": m.get("context_length")}


def model_file(folder: str | os.PathLike) -> Path:
    """The decoder's .onnx file named by genai_config.json."""
    cfg = genai_config(folder)
    name = ((cfg.get("model") or {}).get("decoder") or {}).get("filename") or "model.onnx"
    return Path(folder) / name


def _load_graph(folder):
    import onnx
    path = model_file(folder)
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError / google.protobuf errors: say which file
        raise SlimError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})",
                        "model_load_failed") from None


def onnx_stats(folder: str | os.PathLike) -> dict:
    """Tensor inventory of the decoder: counts and bytes per storage kind, parameter count, bpw."""
    m = _load_graph(folder)
    hist, by_bytes = Counter(), Counter()
    n_params = n_bytes = 0
    for t in m.graph.initializer:
        name, dims = t.name, list(t.dims)
        count = 1
        for d in dims:
            count *= int(d)
        dname, width = _DTYPES.get(t.data_type, (f"type{t.data_type}", 0))
        nbytes = count * width if width else (count + 1) // 2
        nb = _NBITS.search(name)
        if nb:
            bits = int(nb.group(1))
            kind = f"int{bits} MatMulNBits (block {dims[-1] * 8 // bits})" if len(dims) == 3 \
                else f"int{bits} MatMulNBits"
            params = count * 8 // bits
        elif _QAUX.search(name):
            kind, params = f"{dname} quantization scales/zero points", 0
        elif name in ("cos_cache", "sin_cache"):
            kind, params = f"{dname} rotary cache", 0
        else:
            kind, params = dname, count
        if count <= 1 and params <= 1 and not nb:   # graph constants, not weights
            continue
        hist[kind] += 1
        by_bytes[kind] += nbytes
        n_params += params
        n_bytes += nbytes
    data = sum(f.stat().st_size for f in Path(folder).iterdir()
               if f.is_file() and (f.suffix == ".onnx" or f.name.endswith(".onnx.data")))
    return {"tensor_types": dict(sorted(hist.items())), "bytes_by_type": dict(sorted(by_bytes.items())),
            "n_params": n_params, "tensor_bytes": n_bytes, "file_bytes": data,
            "bpw": round(8 * n_bytes / n_params, 4) if n_params else None,
            "file_bpw": round(8 * data / n_params, 4) if n_params else None}


def write_lineage(folder: str | os.PathLike, lineage: dict) -> None:
    """Put ``lineage`` (str keys -> scalars) into the decoder's ``metadata_props``; the external
    data file is untouched (only the graph file is rewritten)."""
    import onnx
    m = _load_graph(folder)
    keep = [p for p in m.metadata_props if p.key not in lineage]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    for k, v in sorted(lineage.items()):
        m.metadata_props.add(key=str(k), value=str(v))
    onnx.save(m, str(model_file(folder)))


def read_lineage(folder: str | os.PathLike) -> dict:
    return {p.key: p.value for p in _load_graph(folder).metadata_props}
