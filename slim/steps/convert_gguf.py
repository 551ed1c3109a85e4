"""HF folder -> 16-bit GGUF with llama.cpp's own converter, at the quantizer's revision.

The converter (``conversion/`` from the llama-cpp-python sdist, see
:mod:`slim.toolchain`) is imported in-process so a failure has a named cause:
an architecture the converter has no class for is ``unsupported_architecture``;
a converter module that does not import (a gguf-py mismatch) is
``converter_import_failed`` with the module and the error, never reported as
an unsupported architecture.
"""
from __future__ import annotations

from dataclasses import dataclass

VERSION = 2
LIBS = ("llama.cpp-toolchain", "torch", "transformers", "safetensors")

_OUTTYPES = {"f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "f32": "ALL_F32"}


@dataclass
class Params:
    outtype: str = "f16"
    subdir: str = ""     # the HF folder inside the input step's output ("" = its root)
    #: declare the llama.cpp pre-tokenizer instead of the converter's hash lookup (model.tokenizer_pre)
    tokenizer_pre: str = ""

    def validate(self):
        errs = []
        if self.outtype not in _OUTTYPES:
            errs.append(("outtype", f"must be one of {', '.join(_OUTTYPES)}"))
        if self.tokenizer_pre:
            known = known_pre_tokenizers()
            if known and self.tokenizer_pre not in known:
                errs.append(("tokenizer_pre", f"{self.tokenizer_pre!r} is not a pre-tokenizer "
                             f"llama.cpp's converter knows (e.g. {', '.join(sorted(known)[:8])}, "
                             f"...)"))
        return errs


def known_pre_tokenizers() -> set[str]:
    """Pre-tokenizer names the converter's hash table maps to (read from its source, no import)."""
    import re

    from slim import toolchain
    base = toolchain.home() / "conversion" / "base.py"
    if not base.is_file():
        return set()
    return set(re.findall(r'^\s*res = "([\w.+-]+)"', base.read_text(), re.M))



def memory(params, model: dict) -> dict:
    """llama.cpp's converter reads the safetensors lazily (mmap) and writes tensor by tensor:
    measured 1.25 bytes/param of RSS at 1.07B (mostly the source's mapped, reclaimable pages)
    plus torch/transformers."""
    from slim.steps.base import TORCH_BASE
    return {"ram": int(1.5 * model["params"]) + TORCH_BASE,
            "why": "the 16-bit source, mapped while converting (≈1.5 bytes/param)"}


def model_class(model_dir):
    """The converter class for ``model_dir``'s config, or a SlimError naming the real cause."""
    import traceback
    from pathlib import Path

    from slim import toolchain
    from slim.errors import SlimError

    conv = toolchain.converter()
    try:
        hparams = conv.ModelBase.load_hparams(Path(model_dir), False)
        arch = conv.get_model_architecture(hparams, conv.ModelType.TEXT)
    except (OSError, ValueError, KeyError) as e:
        raise SlimError(f"{model_dir}/config.json: cannot read the architecture ({e})",
                        "unsupported_architecture") from None
    module = conv.TEXT_MODEL_MAP.get(arch)
    if module is None:
        raise SlimError(f"{model_dir}: llama.cpp's converter ({toolchain.toolchain_id()}) has no "
                        f"class for architecture {arch!r}", "unsupported_architecture")
    try:
        return conv.get_model_class(arch)
    except Exception as e:  # the module itself is broken: say so, with where it broke
        where = traceback.extract_tb(e.__traceback__)[-1]
        raise SlimError(f"llama.cpp converter module conversion/{module}.py (for {arch}) failed "
                        f"to import: {type(e).__name__}: {e} (at {Path(where.filename).name}:"
                        f"{where.lineno}); run `python -m slim.toolchain check`",
                        "converter_import_failed") from None


def convert(model_dir, out_file, outtype: str = "f16", tokenizer_pre: str = "") -> None:
    from pathlib import Path

    import gguf
    import torch

    from slim.errors import SlimError

    cls = model_class(model_dir)
    if tokenizer_pre:  # the user vouches: this vocabulary is pre-tokenized as `tokenizer_pre`
        cls = type(cls.__name__, (cls,), {"model_arch": cls.model_arch,
                                          "get_vocab_base_pre": lambda self, tok: tokenizer_pre})
    try:  # its INFO log and prints go to the step's log (slim.executor.run_step_process)
        with torch.inference_mode():
            model = cls(Path(model_dir), getattr(gguf.LlamaFileType, _OUTTYPES[outtype]),
                        Path(out_file), eager=False)
            model.write()
    except NotImplementedError as e:  # e.g. "BPE pre-tokenizer was not recognized"
        hint = ("; if this is a known tokenizer with a new vocabulary, set model.tokenizer_pre "
                "to its llama.cpp pre-tokenizer name" if "pre-tokenizer" in str(e) else "")
        raise SlimError(f"{model_dir}: llama.cpp's converter refused it: {e}{hint}",
                        "convert_gguf_failed") from None


def run(ctx):
    src = ctx.inputs["model"] / ctx.params.subdir if ctx.params.subdir else ctx.inputs["model"]
    convert(src, ctx.out / "model.gguf", ctx.params.outtype, ctx.params.tokenizer_pre)
