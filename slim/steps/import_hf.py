"""A user's local HF folder as the parent: referenced when it is already 16-bit safetensors,
else rewritten once to 16-bit safetensors.

* 16-bit safetensors of one dtype (bf16 or f16): nothing is loaded or rewritten. The output
  links to the user's weight files and records their digests (``slim-references.json``); see
  :mod:`slim.models.hf_io` for why that is safe when the user edits a file later. The cache
  grows by the config and tokenizer files only, and the dtype is kept (a bf16 source gets a
  BF16 GGUF parent, :func:`slim.models.hf_io.gguf_outtype`).
* fp32 (or mixed, or pickle with ``allow_pickle``): loaded straight into float16 by
  transformers (tensor by tensor: never an fp32 copy in memory) and saved as float16, as
  llama.cpp's ``--outtype auto`` does; a mix containing bf16 is saved as bf16. ``import.json``
  says which happened, and the report's parent section repeats it.
"""
from __future__ import annotations

from dataclasses import dataclass

VERSION = 2
LIBS = ("torch", "transformers", "safetensors")


@dataclass
class Params:
    allow_pickle: bool = False
    trust_remote_code: bool = False


def memory(params, model: dict) -> dict:
    """Referencing reads headers and the tokenizer; rewriting holds one 16-bit copy."""
    p = model["params"]
    if model.get("import_mode") == "reference":
        return {"ram": 1 * 2**30, "why": "tokenizer and safetensors headers only (referenced)"}
    return {"ram": 2 * p + 2 * 2**30, "why": "one 16-bit copy while rewriting (2 bytes/param)"}


def run(ctx):
    from transformers import AutoConfig, AutoTokenizer

    from slim.cache.digest import DigestMemo, memo_path
    from slim.errors import SlimError
    from slim.models.hf_io import check_hf_dir, import_plan, load_causal_lm, reference_folder, \
        save_16bit

    src = ctx.inputs["model_dir"]
    problems = check_hf_dir(src, ctx.params.allow_pickle)
    if problems:
        raise SlimError(problems[0], "model_missing")
    try:
        AutoConfig.from_pretrained(str(src), trust_remote_code=ctx.params.trust_remote_code)
    except (OSError, ValueError, KeyError) as e:
        raise SlimError(f"{src}/config.json: transformers cannot read it "
                        f"({str(e).splitlines()[0]})", "model_load_failed") from None
    try:
        tok = AutoTokenizer.from_pretrained(str(src), trust_remote_code=ctx.params.trust_remote_code)
    except (OSError, ValueError) as e:
        raise SlimError(f"{src}: no usable tokenizer ({str(e).splitlines()[0]})",
                        "tokenizer_missing") from None
    how = import_plan(src)
    if how["mode"] == "reference":
        memo = DigestMemo(memo_path())
        try:
            refs = reference_folder(src, ctx.out, memo)
        finally:
            memo.close()
        how["note"] = (f"{how['source_dtype']} safetensors referenced by digest "
                       f"({len(refs)} file(s)), not copied")
    else:
        model = load_causal_lm(src, how["dtype"], ctx.params.trust_remote_code)
        save_16bit(model, tok, ctx.out, how["dtype"])
        how["note"] = f"{how['source_dtype']} source stored as {how['dtype']}"
        if how["source_dtype"] == "float32":
            how["note"] += " (fp32 source: values outside float16's range would saturate)"
    ctx.log(how["note"])
    ctx.write_json("import.json", how)
