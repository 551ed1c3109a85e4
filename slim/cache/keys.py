"""Cache keys: xxh3-128 over canonical JSON of everything a step's output depends on.

The key material is kept (in each entry's manifest and in builds' steps.json) so
the executor can say *why* a step reruns: which param, input or library changed.
"""
from __future__ import annotations

import json
import math
from importlib import metadata
from typing import Any

import xxhash

from slim.fileio import canonical_json as _canonical

#: bump when the layout of key material itself changes; pinned by golden tests
KEY_SCHEMA = 1


def _normalise(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _normalise(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_normalise(v) for v in obj]
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            raise ValueError(f"non-finite float {obj!r} cannot be part of a cache key")
        if obj.is_integer():
            return int(obj)
        return obj
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if hasattr(obj, "__fspath__"):
        return str(obj)
    raise TypeError(f"value of type {type(obj).__name__} cannot be part of a cache key")


def canonical_json(obj: Any) -> str:
    """slim's canonical JSON (compact) of the key material: integral floats as ints."""
    return _canonical(_normalise(obj))


def hash_material(material: dict) -> str:
    return xxhash.xxh3_128_hexdigest(canonical_json(material).encode())


_VERSIONS: dict[str, str] = {}


def _toolchain_id() -> str:
    from slim.toolchain import toolchain_id
    return toolchain_id()


#: "libraries" with no PyPI version of their own: llama.cpp's converter + gguf-py pair, whose
#: gguf version label did not change when its source did (slim.toolchain)
_PSEUDO_LIBS = {"llama.cpp-toolchain": _toolchain_id}


def lib_versions(libs: list[str] | tuple[str, ...]) -> dict[str, str]:
    out = {}
    for lib in sorted(set(libs)):
        if lib not in _VERSIONS and lib in _PSEUDO_LIBS:
            _VERSIONS[lib] = _PSEUDO_LIBS[lib]()
        if lib not in _VERSIONS:
            try:
                _VERSIONS[lib] = metadata.version(lib)
            except metadata.PackageNotFoundError:
                _VERSIONS[lib] = "absent"
        out[lib] = _VERSIONS[lib]
    return out


def key_material(kind: str, version: int, params: dict, inputs: dict[str, str],
                 libs: dict[str, str]) -> dict:
    return {"key_schema": KEY_SCHEMA, "step": kind, "version": version, "params": params,
            "inputs": inputs, "libs": libs}


def step_key(kind: str, version: int, params: dict, inputs: dict[str, str],
             libs: dict[str, str]) -> tuple[str, dict]:
    material = key_material(kind, version, params, inputs, libs)
    return hash_material(material), material


def diff_material(old: dict | None, new: dict) -> list[str]:
    """Human reasons why ``new`` differs from ``old`` (empty list: identical)."""
    if old is None:
        return ["no previous run of this step"]
    reasons: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                p = f"{path}.{k}" if path else k
                if k not in a:
                    reasons.append(f"{p} added ({_short(b[k])})")
                elif k not in b:
                    reasons.append(f"{p} removed")
                else:
                    walk(a[k], b[k], p)
        elif a != b:
            reasons.append(f"{path} changed: {_short(a)} -> {_short(b)}")

    walk(old, new, "")
    return reasons


def _short(v: Any) -> str:
    if isinstance(v, str) and v[:5] in ("step:", "file:"):
        return v[:17]  # kind + 12 hex digits of a key or digest
    s = json.dumps(v, sort_keys=True) if not isinstance(v, str) else v
    return s if len(s) <= 60 else s[:57] + "..."
