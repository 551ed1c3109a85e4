"""HF folder -> F16 GGUF with llama.cpp's own converter (``convert_hf_to_gguf`` logic).

llama.cpp's converter is not on PyPI as a library; auto-round vendors it
(``auto_round.export.export_to_gguf.conversion``) and keeps it in sync with
upstream, so we use that copy with ``auto_update=False`` (never the network).
"""
from __future__ import annotations

from dataclasses import dataclass

VERSION = 1
LIBS = ("auto-round", "gguf", "torch", "transformers", "safetensors")

_OUTTYPES = {"f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "f32": "ALL_F32"}


@dataclass
class Params:
    outtype: str = "f16"
    subdir: str = ""     # the HF folder inside the input step's output ("" = its root)

    def validate(self):
        if self.outtype not in _OUTTYPES:
            return [("outtype", f"must be one of {', '.join(_OUTTYPES)}")]
        return []


def convert(model_dir, out_file, outtype: str = "f16") -> None:
    import contextlib
    import io
    import logging
    from pathlib import Path

    import gguf
    from auto_round.export.export_to_gguf.llama_cpp_conversion import get_conversion

    from slim.errors import SlimError

    logging.getLogger("hf-to-gguf").setLevel(logging.WARNING)
    try:
        conv = get_conversion(model_path=str(model_dir), auto_update=False)
        hparams = conv.module.ModelBase.load_hparams(Path(model_dir), False) \
            if hasattr(conv.module.ModelBase, "load_hparams") else None
        arch = conv.get_model_architecture(hparams, conv.ModelType.TEXT) if hparams else None
    except NotImplementedError as e:
        raise SlimError(f"{model_dir}: llama.cpp's converter does not support this "
                        f"architecture ({e})", "unsupported_architecture") from None
    if arch is None:
        import json
        arch = json.loads((Path(model_dir) / "config.json").read_text())["architectures"][0]
    cls = conv.get_model_class(arch)
    with contextlib.redirect_stdout(io.StringIO()):
        model = cls(Path(model_dir), getattr(gguf.LlamaFileType, _OUTTYPES[outtype]),
                    Path(out_file), eager=False)
        model.write()


def run(ctx):
    src = ctx.inputs["model"] / ctx.params.subdir if ctx.params.subdir else ctx.inputs["model"]
    convert(src, ctx.out / "model.gguf", ctx.params.outtype)
