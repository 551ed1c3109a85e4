"""Read and rewrite the safetensors files of an HF folder (through ``safetensors.safe_open``)."""
from __future__ import annotations

import json
from pathlib import Path

from slim.fileio import atomic_path, write_json

#: bits per element of safetensors dtypes (the file stores a tensor in ceil(n * bits / 8) bytes)
_BITS = {"F64": 64, "I64": 64, "U64": 64, "F32": 32, "I32": 32, "U32": 32, "F16": 16, "BF16": 16,
         "I16": 16, "U16": 16, "I8": 8, "U8": 8, "BOOL": 8, "F8_E4M3": 8, "F8_E5M2": 8,
         "F8_E8M0": 8, "F6_E2M3": 6, "F6_E3M2": 6, "F4": 4}


def tensors(path: Path) -> tuple[dict, dict[str, dict]]:
    """(metadata, {name: {"dtype", "shape", "bytes"}}) of one safetensors file; no tensor is read."""
    from safetensors import safe_open
    out = {}
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
        for name in f.keys():
            s = f.get_slice(name)
            dtype, shape = s.get_dtype(), list(s.get_shape())
            n = 1
            for d in shape:
                n *= int(d)
            out[name] = {"dtype": dtype, "shape": shape, "bytes": (n * _BITS[dtype] + 7) // 8}
    return meta, out


def cast_float_tensors(folder: Path, dtype: str) -> dict[str, int]:
    """Rewrite fp32 tensors of every safetensors file in ``folder`` as ``dtype``; fix config.

    Returns {tensor name: 1} for what was cast (empty when everything was 16-bit already).
    """
    import torch
    from safetensors.torch import load_file, save_file
    cast = {}
    target = getattr(torch, dtype)
    for f in sorted(folder.glob("*.safetensors")):
        meta, info = tensors(f)
        if not any(v["dtype"] == "F32" for v in info.values()):
            continue
        data = load_file(str(f))
        for k, t in data.items():
            if t.dtype == torch.float32:
                data[k] = t.to(target)
                cast[k] = 1
        with atomic_path(f) as tmp:
            save_file(data, str(tmp), metadata=meta or {"format": "pt"})
    cfg = folder / "config.json"
    if cfg.is_file():
        c = json.loads(cfg.read_text())
        changed = False
        for key in ("dtype", "torch_dtype"):
            if key in c and c[key] != dtype:
                c[key] = dtype
                changed = True
        if changed:
            write_json(cfg, c)
    return cast


def folder_stats(folder: Path, n_params: int) -> dict:
    """Tensor dtype histogram, bytes and bits per weight of the safetensors in ``folder``."""
    from collections import Counter
    hist, by_bytes = Counter(), Counter()
    tensor_bytes = file_bytes = 0
    for f in sorted(folder.glob("*.safetensors")):
        file_bytes += f.stat().st_size
        for v in tensors(f)[1].values():
            hist[v["dtype"]] += 1
            by_bytes[v["dtype"]] += v["bytes"]
            tensor_bytes += v["bytes"]
    folder_bytes = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {"tensor_types": dict(sorted(hist.items())), "bytes_by_type": dict(sorted(by_bytes.items())),
            "n_params": int(n_params), "tensor_bytes": tensor_bytes, "weights_file_bytes": file_bytes,
            "folder_bytes": folder_bytes,
            "bpw": round(8 * tensor_bytes / n_params, 4) if n_params else None,
            "file_bpw": round(8 * file_bytes / n_params, 4) if n_params else None,
            "bpw_basis": "8 × safetensors tensor bytes / parameters of the parent architecture"}
