"""Writing HF model folders the way a user deploys them (16-bit, safetensors)."""
from __future__ import annotations

from pathlib import Path

from slim.errors import SlimError


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


def save_16bit(model, tokenizer, out: Path, dtype: str = "float16") -> None:
    import torch
    model = model.to(getattr(torch, dtype))
    model.config.dtype = getattr(torch, dtype)
    model.save_pretrained(out, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)


def load_causal_lm(path: str | Path, dtype: str = "float32", trust_remote_code: bool = False):
    import torch
    from transformers import AutoModelForCausalLM
    try:
        return AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype),
                                                    trust_remote_code=trust_remote_code)
    except (OSError, ValueError, RuntimeError) as e:
        raise SlimError(f"cannot load model from {path}: {str(e).splitlines()[0]}",
                        "model_load_failed") from None
