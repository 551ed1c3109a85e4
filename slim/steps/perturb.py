"""A negative control, not a compression: the parent with seeded Gaussian noise in its weights.

Each matching tensor ``W`` becomes ``W + scale · std(W) · N(0, 1)`` (computed in float32, stored
back in the tensor's own dtype); every other file of the folder is copied unchanged. With
``scale: 0`` the child is the parent, bit for bit. It exists to show that the gates reject a
damaged child and accept an undamaged one, through the same plan, steps and report as any
method (``method=noise_control``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

VERSION = 1
LIBS = ("torch", "safetensors")

DEFAULT_TENSORS = [r"\.(q|k|v|o|gate|up|down)_proj\.weight$"]


@dataclass
class Params:
    scale: float = 0.5               # noise std as a fraction of each tensor's own std
    seed: int = 0
    tensors: list = field(default_factory=lambda: list(DEFAULT_TENSORS))   # regexes on names
    subdir: str = ""

    def validate(self):
        import re
        errs = []
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) \
                or not self.scale >= 0:
            errs.append(("scale", f"must be a number ≥ 0, got {self.scale!r}"))
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            errs.append(("seed", f"must be an integer, got {self.seed!r}"))
        for i, t in enumerate(self.tensors or []):
            try:
                re.compile(t)
            except (re.error, TypeError) as e:
                errs.append((f"tensors[{i}]", f"not a regular expression: {e}"))
        return errs


def plan_stage(planner, current, params: dict, index: int):
    from slim.errors import SlimError
    from slim.steps.base import Artifact, Step
    from slim.steps.helpers import plain

    if current.format not in ("hf", "safetensors"):
        raise SlimError(f"perturb needs an HF model folder as input, got {current.format}")
    params = plain(params)
    p = Params(**params)
    sid = planner.add(Step(f"perturb:{index}", "perturb",
                           {**params, **({"subdir": current.file} if current.file else {})},
                           deps={"model": current.step},
                           desc=f"parent + Gaussian noise at {p.scale:g}× each weight's std "
                                f"(negative control)"))
    return Artifact(sid, "hf", "model")


def run(ctx):
    import re
    import shutil
    from pathlib import Path

    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    p = ctx.params
    src = Path(ctx.inputs["model"]) / p.subdir if p.subdir else Path(ctx.inputs["model"])
    out = ctx.out / "model"
    out.mkdir(parents=True)
    pats = [re.compile(t) for t in p.tensors]
    gen = torch.Generator().manual_seed(int(p.seed))
    touched, total = 0, 0
    for f in sorted(src.iterdir()):
        if not f.is_file():
            continue
        if f.suffix != ".safetensors":
            shutil.copy2(f, out / f.name)
            continue
        with safe_open(str(f), "pt") as st:
            meta = st.metadata()
            tensors = {k: st.get_tensor(k) for k in st.keys()}
        for name in sorted(tensors):
            total += 1
            w = tensors[name]
            if p.scale == 0 or not any(r.search(name) for r in pats) or not w.is_floating_point():
                continue
            w32 = w.float()
            noise = torch.randn(w32.shape, generator=gen) * (p.scale * float(w32.std()))
            tensors[name] = (w32 + noise).to(w.dtype)
            touched += 1
        save_file(tensors, str(out / f.name), metadata=meta)
    ctx.log(f"noise at {p.scale:g}× std added to {touched} of {total} tensors")
    ctx.write_json("compress.json", {"engine": "seeded Gaussian noise (negative control)",
                                     "scale": p.scale, "seed": p.seed,
                                     "tensors_perturbed": touched, "tensors": total})
