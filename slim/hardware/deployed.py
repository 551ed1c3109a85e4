"""What a method deploys — shape and storage — read from its stages' own declarations.

Each stage module may declare, next to its ``Params``:

* ``storage(params) -> dict`` — how the weights it writes are stored (``gguf_storage``,
  ``compressed_tensors_storage`` or ``DENSE`` from :mod:`slim.hardware.estimate`), computed
  from the stage's own params (type, scheme, group size, fallbacks); it raises ``SlimError``
  when the size cannot be known without the weights;
* ``deployed_arch(params, arch) -> dict`` — the architecture after the stage, when the
  stage changes the model's shape.

A stage without ``storage`` whose params name a compressed-tensors ``scheme`` is sized from
that scheme and its ``group_size``/``group_fallbacks``/``indivisible``/``ignore`` params;
without a scheme it writes the model dense in 16-bit. The last stage's storage is what
deploys. So a new method YAML is sized from its params with no code naming it.
"""
from __future__ import annotations

from typing import Any

from slim.hardware.estimate import DENSE, compressed_tensors_storage
from slim.steps.base import parse_params, step_module


def _default_storage(p: Any) -> dict:
    scheme = getattr(p, "scheme", None)
    if not scheme:
        return dict(DENSE)
    return compressed_tensors_storage(
        scheme, getattr(p, "group_size", None), getattr(p, "group_fallbacks", None) or (),
        getattr(p, "indivisible", "fallback"),
        sym=getattr(p, "sym", None),
        quantize_lm_head="lm_head" not in (getattr(p, "ignore", None) or ["lm_head"]))


def stage_storage(kind: str, params: dict | None) -> dict:
    """How the weights a stage writes are stored (see the module docstring)."""
    mod = step_module(kind)
    p = parse_params(kind, params)
    hook = getattr(mod, "storage", None)
    return hook(p) if hook is not None else _default_storage(p)


def deployed(method: dict, arch: dict) -> tuple[dict, dict]:
    """(architecture, storage) of what ``method`` deploys on a parent of ``arch``."""
    arch = dict(arch)
    storage = dict(DENSE)
    for st in method.get("stages") or []:
        kind, params = st.get("kind"), st.get("params") or {}
        p = parse_params(kind, params)
        reshape = getattr(step_module(kind), "deployed_arch", None)
        if reshape is not None:
            arch = reshape(p, arch)
        storage = stage_storage(kind, params)
    return arch, storage
