"""Importance matrix from calibration activations, computed in torch.

llama.cpp's ``llama-imatrix`` tool is not part of llama-cpp-python, so we compute
the same statistic ourselves: for every linear layer, the mean over calibration
tokens of the squared input activation per input column (llama-imatrix stores
``sum(x^2) / count``). Tensor names come from gguf's own HF→GGUF name map and
are checked against the F16 GGUF, so a naming mismatch fails here, not silently
in the quantizer.
"""
from __future__ import annotations

from dataclasses import dataclass

VERSION = 1
LIBS = ("torch", "transformers", "gguf", "numpy")


@dataclass
class Params:
    batch_size: int = 4
    subdir: str = ""     # the HF folder inside the model step's output


def run(ctx):
    import json

    import numpy as np
    import torch
    from gguf import GGUFReader

    from slim.errors import SlimError
    from slim.models.hf_io import load_causal_lm
    from slim.steps.gguf_names import hf_to_gguf_names

    torch.set_num_threads(ctx.threads)
    tokens = np.load(ctx.inputs["calibration"] / "tokens.npy")
    src = ctx.inputs["model"] / ctx.params.subdir if ctx.params.subdir else ctx.inputs["model"]
    model = load_causal_lm(src, "float32")
    model.eval()
    gguf_tensors = {t.name: t for t in GGUFReader(str(ctx.inputs["f16"] / "model.gguf")).tensors}
    names = hf_to_gguf_names(model, gguf_tensors)
    if not names:
        raise SlimError("no linear layer of the model maps to a GGUF tensor", "imatrix_failed")

    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    hooks = []
    for mod_name, gname in names.items():
        mod = model.get_submodule(mod_name)

        def hook(m, args, _g=gname):
            x = args[0].detach().reshape(-1, args[0].shape[-1])
            s = (x * x).sum(0).to(torch.float64)  # per-batch sum in fp32, running sum in fp64
            sums[_g] = sums[_g] + s if _g in sums else s
            counts[_g] = counts.get(_g, 0) + x.shape[0]
        hooks.append(mod.register_forward_pre_hook(hook))
    bs = max(1, ctx.params.batch_size)
    # the LM head only matters when the GGUF has its own output.weight (untied embeddings)
    run_head = "output.weight" in names.values()
    with torch.no_grad():
        for i in ctx.progress(range(0, len(tokens), bs), desc="imatrix"):
            ids = torch.from_numpy(tokens[i:i + bs].astype(np.int64))
            (model if run_head else model.base_model)(ids)
    for h in hooks:
        h.remove()
    arrays = {g: (sums[g] / counts[g]).to(torch.float32).numpy() for g in sums}
    for g, a in arrays.items():
        want = gguf_tensors[g].shape[0]  # GGUF shape is (cols, rows): first dim = row length
        if a.shape[0] != want:
            raise SlimError(f"imatrix for {g} has {a.shape[0]} columns, GGUF tensor rows are "
                            f"{want} long", "imatrix_failed")
    np.savez(ctx.out / "imatrix.npz", **arrays)
    (ctx.out / "imatrix.json").write_text(json.dumps({
        "entries": len(arrays), "chunks": int(len(tokens)), "tokens": int(tokens.size),
        "statistic": "mean of squared input activation per column (llama-imatrix convention)"},
        indent=2))
