"""Import a GGUF parent (the embedded SmolLM2 Q4_1) as a clean 16-bit HF folder.

transformers dequantizes GGUF (``gguf_file=``), but the loaded model refuses
``save_pretrained``; a fresh model built from its config takes the state dict.
The tokenizer is rebuilt from GGUF metadata (see slim.models.gguf_tokenizer).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

VERSION = 2
LIBS = ("torch", "transformers", "llama.cpp-toolchain", "tokenizers", "safetensors")


@dataclass
class Params:
    package: Optional[str] = None
    file: Optional[str] = None
    path: Optional[str] = None
    dtype: str = "float16"

    def validate(self):
        errs = []
        if not self.path and not (self.package and self.file):
            errs.append(("", "give model.path (a .gguf file) or model.package + model.file"))
        if self.dtype not in ("float16", "bfloat16"):
            errs.append(("dtype", "must be float16 or bfloat16"))
        return errs


def source_file(p: Params):
    from pathlib import Path

    from slim.models.embedded import packaged_file
    return Path(p.path) if p.path else packaged_file(p.package, p.file)


def run(ctx):
    import contextlib
    import io
    from pathlib import Path

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from slim.errors import SlimError
    from slim.models.gguf_reading import memoized_gguf
    from slim.models.gguf_tokenizer import tokenizer_from_gguf
    from slim.models.hf_io import save_16bit
    from slim.units import fmt_bytes

    src = Path(ctx.inputs["gguf"])
    ctx.log(f"importing {src.name} ({fmt_bytes(src.stat().st_size)})")
    with memoized_gguf() as reader:   # one parse of the file for tokenizer, config and weights
        tok = tokenizer_from_gguf(src, reader(str(src)))
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                loaded = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name,
                                                              dtype=torch.float32)
        except Exception as e:
            raise SlimError(f"{src}: cannot read GGUF weights ({str(e).splitlines()[0]})",
                            "corrupt_gguf") from None
        config = AutoConfig.from_pretrained(str(src.parent), gguf_file=src.name)
    config.__dict__.pop("quantization_config", None)
    config.bos_token_id, config.eos_token_id = tok.bos_token_id, tok.eos_token_id
    config.pad_token_id = tok.pad_token_id
    torch.manual_seed(0)
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    missing = [m for m in missing if not (m == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise SlimError(f"{src}: weights do not match the architecture (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]})", "import_failed")
    fresh.generation_config.bos_token_id = tok.bos_token_id
    fresh.generation_config.eos_token_id = tok.eos_token_id
    fresh.generation_config.pad_token_id = tok.pad_token_id
    save_16bit(fresh, tok, ctx.out, ctx.params.dtype)
    ctx.write_json("import.json", {"source": src.name, "source_bytes": src.stat().st_size,
                                   "params": sum(p.numel() for p in fresh.parameters())})
