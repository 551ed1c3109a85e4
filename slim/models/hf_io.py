"""Reading and writing HF model folders the way a user deploys them (16-bit, safetensors).

A user's folder that already holds 16-bit safetensors is *referenced*, not rewritten
(:func:`reference_folder`): the import step's output holds links to the user's weight files,
copies of the small files (config, tokenizer) and ``slim-references.json`` with each
referenced file's xxh3 digest. Readers go through the links; the executor checks the digests
(:func:`check_references`) before and after every step that reads such an import. Why this is
safe when the user edits a file in place later:

* the import step's cache key already includes the digest of the user's folder (a ``files``
  input), so edited weights give a new key for the import and every step downstream: no stale
  result is ever served for new weights;
* an old import entry whose links now reach edited bytes can only be looked up by the old key,
  i.e. only when the folder digests as before again — when the bytes are the old ones again;
* an edit *during* a build (between the key and a step reading the files) is caught by the
  digest check before and after each reading step: the step fails with ``model_changed``
  instead of caching a result under the old key;
* the cache's own ``verify`` reads through the links and compares with the manifest, so a
  ``verify=true`` build notices a changed file too.

On a cache shared by hosts, the links are absolute paths of the host that imported: every host
must see the folder at that path (as ``model.path`` in a sweep already requires); a host that
does not gets ``model_changed`` naming the missing file, never wrong weights.

Hardlinks were rejected: they share the inode, so an in-place write (``open(path, 'wb')``, as
``save_pretrained``/``safetensors`` do) would silently change the cached bytes with no digest
ever rechecked, and they fail across filesystems anyway.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

from slim.errors import SlimError

#: in an import step's output: {file name: {"target": absolute path, "xxh3": ..., "size": ...}}
REFERENCES = "slim-references.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
#: safetensors dtype -> bytes per element, for the floating types a checkpoint stores
_ST_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1}
TORCH_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def check_hf_dir(path: str | Path, allow_pickle: bool = False) -> list[str]:
    """Problems with a user's HF folder (empty: loadable)."""
    p = Path(path)
    if not p.is_dir():
        return [f"{p} is not a directory"]
    if not (p / "config.json").is_file():
        return [f"{p} has no config.json"]
    weights = list(p.glob("*.safetensors"))
    if not weights:
        pickles = list(p.glob("*.bin")) + list(p.glob("*.pt"))
        if pickles and not allow_pickle:
            return [f"{p} holds only pickle weights ({pickles[0].name}); convert to safetensors "
                    f"or set model.allow_pickle=true if you trust the file"]
        if not pickles:
            return [f"{p} has config.json but no weights (*.safetensors)"]
    return []


def safetensors_header(path: str | Path) -> dict:
    """The JSON header of a safetensors file (tensor name -> dtype, shape, offsets), read
    without touching the tensor data."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100 * 2**20:
                raise ValueError(f"header of {n} bytes")
            return json.loads(f.read(n))
    except (OSError, ValueError, struct.error) as e:
        raise SlimError(f"{path}: not a readable safetensors file ({e})", "model_load_failed") \
            from None


def folder_weights(path: str | Path) -> dict:
    """What a folder's safetensors hold, from their headers: ``{"files": [...], "params": n,
    "dtypes": {safetensors dtype: elements}, "dtype": the one floating dtype or None}``."""
    p = Path(path)
    files = sorted(p.glob("*.safetensors"))
    dtypes: dict[str, int] = {}
    params = 0
    for f in files:
        for name, t in safetensors_header(f).items():
            if name == "__metadata__":
                continue
            n = 1
            for d in t.get("shape", []):
                n *= int(d)
            params += n
            if t.get("dtype") in _ST_BYTES:
                dtypes[t["dtype"]] = dtypes.get(t["dtype"], 0) + n
    floating = [d for d in dtypes if d in _ST_BYTES]
    return {"files": [f.name for f in files], "params": params, "dtypes": dtypes,
            "dtype": floating[0] if len(floating) == 1 else None}


def source_dtype(path: str | Path) -> str | None:
    """The torch dtype name of a folder whose safetensors share one floating dtype
    (``bfloat16``, ``float16``, ``float32``), else None (mixed, pickle, none)."""
    try:
        w = folder_weights(path)
    except SlimError:
        return None
    return TORCH_DTYPE.get(w["dtype"] or "")


def is_quantized_folder(path: str | Path) -> bool:
    """True for a folder whose config.json declares a quantization (compressed-tensors, GPTQ,
    AWQ...): its safetensors' float dtype is the scales', not the model's."""
    try:
        cfg = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(cfg.get("quantization_config") or cfg.get("compression_config"))


def import_plan(path: str | Path) -> dict:
    """How the import step treats a folder: ``reference`` (16-bit safetensors, one dtype),
    else ``rewrite`` to ``dtype`` (an fp32 or mixed source becomes float16, as llama.cpp's
    ``--outtype auto`` does; a bf16-containing mix stays bf16)."""
    w = folder_weights(path) if any(Path(path).glob("*.safetensors")) else \
        {"files": [], "params": 0, "dtypes": {}, "dtype": None}
    if w["dtype"] in ("F16", "BF16"):
        return {"mode": "reference", "dtype": TORCH_DTYPE[w["dtype"]],
                "source_dtype": TORCH_DTYPE[w["dtype"]], "params": w["params"]}
    dtype = "bfloat16" if "BF16" in w["dtypes"] else "float16"
    src = TORCH_DTYPE.get(w["dtype"] or "", "mixed" if w["dtypes"] else "pickle")
    return {"mode": "rewrite", "dtype": dtype, "source_dtype": src, "params": w["params"]}


def gguf_outtype(path: str | Path) -> str:
    """The 16-bit GGUF type for an HF folder, like llama.cpp's ``--outtype auto``: bf16 when its
    weights are bf16, f16 otherwise."""
    return "bf16" if source_dtype(path) == "bfloat16" else "f16"


def reference_folder(src: Path, out: Path, memo=None) -> dict:
    """Fill ``out`` with links to ``src``'s weight files and copies of its other top-level
    files; write :data:`REFERENCES`. Returns the references."""
    from slim.cache.digest import file_digest
    src = Path(src).resolve()
    refs = {}
    out.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.name.startswith(".") or not f.is_file():
            continue
        if f.name.endswith(WEIGHT_SUFFIXES):
            if not f.name.endswith(".safetensors"):
                continue
            target = f.resolve()
            os.symlink(target, out / f.name)
            digest = memo.digest(target) if memo is not None else file_digest(target)
            refs[f.name] = {"target": str(target), "xxh3": digest, "size": target.stat().st_size}
        else:
            shutil.copyfile(f, out / f.name)
    (out / REFERENCES).write_text(json.dumps(refs, indent=1, sort_keys=True))
    return refs


def check_references(folder: Path, memo=None, step: str = "") -> None:
    """Raise ``model_changed`` when a file an import step references no longer has the digest
    it had (the user edited, moved or removed it). Uses the stat-keyed digest memo, so an
    unchanged file is not re-read."""
    from slim.cache.digest import file_digest
    ref_file = Path(folder) / REFERENCES
    if not ref_file.is_file():
        return
    for name, ref in json.loads(ref_file.read_text()).items():
        target = Path(ref["target"])
        if not target.is_file():
            raise SlimError(f"{target} (referenced by the imported model) is gone; put it back "
                            f"or rebuild", "model_changed")
        digest = memo.digest(target) if memo is not None else file_digest(target)
        if digest != ref["xxh3"]:
            raise SlimError(f"{target} changed since it was imported"
                            f"{f' (checked for step {step})' if step else ''}: the build's keys "
                            f"were computed from its old bytes; run the build again", "model_changed")


def save_16bit(model, tokenizer, out: Path, dtype: str = "float16") -> None:
    import torch
    model = model.to(getattr(torch, dtype))
    model.config.dtype = getattr(torch, dtype)
    model.save_pretrained(out, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)


def load_causal_lm(path: str | Path, dtype: str = "auto", trust_remote_code: bool = False,
                   device_map=None):
    """An HF causal LM. ``dtype="auto"``: the folder's own 16-bit dtype (an fp32 folder loads as
    float16), never an fp32 copy of 16-bit weights."""
    import torch
    from transformers import AutoModelForCausalLM
    if dtype == "auto":
        dtype = source_dtype(path) or "float16"
        if dtype == "float32":
            dtype = "float16"
    try:
        kw = {"device_map": device_map} if device_map is not None else {}
        return AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype),
                                                    trust_remote_code=trust_remote_code, **kw)
    except (OSError, ValueError, RuntimeError) as e:
        raise SlimError(f"cannot load model from {path}: {str(e).splitlines()[0]}",
                        "model_load_failed") from None
