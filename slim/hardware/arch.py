"""Model architecture dimensions, without weights.

An *arch* is a plain dict keyed like Hugging Face ``config.json`` (``hidden_size``,
``intermediate_size``, ``num_hidden_layers``, ``num_attention_heads``,
``num_key_value_heads``, ``head_dim``, ``vocab_size``, ``tie_word_embeddings``,
``max_position_embeddings``). It can come from a model config (``model.arch``), from a
``config.json``, or from a GGUF file's metadata.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from slim.errors import SlimError

REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads")


def _as_dict(arch: Any) -> dict:
    if arch is None:
        raise SlimError("no model architecture given: set model.arch or point at a config.json/GGUF",
                        "missing_arch")
    if isinstance(arch, Mapping):
        return {str(k): arch[k] for k in arch}
    try:  # OmegaConf DictConfig and similar
        from omegaconf import OmegaConf
        return dict(OmegaConf.to_container(arch, resolve=True))
    except Exception as e:  # noqa: BLE001 - report what we were given
        raise SlimError(f"model architecture must be a mapping, got {type(arch).__name__}",
                        "invalid_arch") from e


def normalize_arch(arch: Any, need: tuple[str, ...] = REQUIRED) -> dict:
    """Return a copy of ``arch`` with HF defaults filled in; SlimError naming any missing key."""
    a = _as_dict(arch)
    if "text_config" in a and "hidden_size" not in a and isinstance(a["text_config"], Mapping):
        a = {**_as_dict(a["text_config"]), **{k: v for k, v in a.items() if k != "text_config"}}
    missing = [k for k in need if a.get(k) in (None, "")]
    if missing:
        raise SlimError(f"model architecture lacks {', '.join(missing)} "
                        f"(keys as in a Hugging Face config.json)", "invalid_arch")
    for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings"):
        if a.get(k) is not None:
            try:
                a[k] = int(a[k])
            except (TypeError, ValueError) as e:
                raise SlimError(f"model architecture: {k}={a[k]!r} is not an integer",
                                "invalid_arch") from e
            if a[k] <= 0:
                raise SlimError(f"model architecture: {k} must be > 0 (got {a[k]})", "invalid_arch")
    heads = a.get("num_attention_heads")
    if heads:
        if a.get("num_key_value_heads") is None:
            a["num_key_value_heads"] = heads
        if a.get("head_dim") is None and a.get("hidden_size"):
            a["head_dim"] = a["hidden_size"] // heads
    a["tie_word_embeddings"] = bool(a.get("tie_word_embeddings", False))
    return a


def arch_from_hf_config(path: str | Path) -> dict:
    """Read the architecture from an HF model directory or its ``config.json``."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise SlimError(f"no config.json at {p}", "missing_config")
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SlimError(f"cannot read {p}: {e}", "invalid_config_json") from e
    if not isinstance(cfg, dict):
        raise SlimError(f"{p} is not a JSON object", "invalid_config_json")
    return normalize_arch(cfg)


def _scalar(v: Any) -> Any:
    if isinstance(v, list):  # e.g. per-layer head_count_kv: take the largest
        nums = [x for x in v if isinstance(x, (int, float))]
        return max(nums) if nums else None
    return v


def arch_from_gguf(path: str | Path) -> dict:
    """Read the architecture from a GGUF file's metadata (no tensor data is loaded).

    Through :func:`slim.models.gguf_header.read_gguf_header`, not ``gguf.GGUFReader``: the
    reader decodes every vocabulary entry (3.3 s of a 4 s warm rebuild of the default model)."""
    from slim.models.gguf_header import read_gguf_header

    p = Path(path)
    if not p.is_file():
        raise SlimError(f"GGUF file not found: {p}", "missing_model_file")
    meta, _ = read_gguf_header(p, ["general.architecture"])
    a = meta.get("general.architecture")
    if not a:
        raise SlimError(f"{p} has no general.architecture key", "invalid_gguf")
    keys = [f"{a}.{k}" for k in ("vocab_size", "attention.head_count", "attention.head_count_kv",
                                 "embedding_length", "feed_forward_length", "block_count",
                                 "attention.key_length", "context_length")]
    meta, tensors = read_gguf_header(p, keys, array_lengths=["tokenizer.ggml.tokens"])

    def get(key: str, default: Any = None) -> Any:
        return _scalar(meta[key]) if key in meta else default

    names = {t.name for t in tensors}
    vocab = get(f"{a}.vocab_size") or meta.get("tokenizer.ggml.tokens")
    if vocab is None:
        for t in tensors:
            if t.name == "token_embd.weight":
                vocab = int(t.shape[-1]) if len(t.shape) > 1 else None
    heads = get(f"{a}.attention.head_count")
    kv = get(f"{a}.attention.head_count_kv", heads)
    out = {
        "model_type": a,
        "hidden_size": get(f"{a}.embedding_length"),
        "intermediate_size": get(f"{a}.feed_forward_length"),
        "num_hidden_layers": get(f"{a}.block_count"),
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "head_dim": get(f"{a}.attention.key_length"),
        "vocab_size": vocab,
        "tie_word_embeddings": "output.weight" not in names,
        "max_position_embeddings": get(f"{a}.context_length"),
    }
    return normalize_arch({k: v for k, v in out.items() if v is not None})
