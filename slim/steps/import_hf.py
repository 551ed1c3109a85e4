"""A user's local HF folder, normalised to 16-bit safetensors (what a user deploys)."""
from __future__ import annotations

from dataclasses import dataclass

VERSION = 1
LIBS = ("torch", "transformers", "safetensors")


@dataclass
class Params:
    allow_pickle: bool = False
    trust_remote_code: bool = False
    dtype: str = "float16"


def run(ctx):
    from transformers import AutoTokenizer

    from slim.errors import SlimError
    from slim.models.hf_io import check_hf_dir, load_causal_lm, save_16bit

    src = ctx.inputs["model_dir"]
    problems = check_hf_dir(src, ctx.params.allow_pickle)
    if problems:
        raise SlimError(problems[0], "model_missing")
    model = load_causal_lm(src, "float32", ctx.params.trust_remote_code)
    try:
        tok = AutoTokenizer.from_pretrained(str(src), trust_remote_code=ctx.params.trust_remote_code)
    except (OSError, ValueError) as e:
        raise SlimError(f"{src}: no usable tokenizer ({str(e).splitlines()[0]})",
                        "tokenizer_missing") from None
    save_16bit(model, tok, ctx.out, ctx.params.dtype)
