"""Weights kept in their 16-bit dtype, each module computed in float32: float32 results without a
float32 copy of the model (issue 16).

A bf16/fp16 weight widened to float32 is exact, so a module whose parameters are widened just
before its forward computes exactly what the same module of a float32-loaded copy computes; the
float32 copy of the whole model (4 bytes/param) becomes one module's at a time. Two modes:

* **per call** (``Float32Compute(model)``): every module with its own floating parameters is
  widened in a forward pre-hook and narrowed back in its forward hook. Parameters stay 16-bit
  between calls. For inference (the transformers runtime, teachers): values are never written,
  so narrowing back puts the loaded 16-bit tensor itself back (no copy, no rounding).
* **lazy blocks** (``blocks=[decoder layers]``): modules inside a block are widened when the
  block is first entered and stay float32 until another block is entered (then they are
  narrowed back). This is what a sequential calibration pipeline (llm-compressor's) needs: the
  block is run once per calibration sample, then its weights are updated (GPTQ, AWQ, pruning)
  in float32, then run again on the updated float32 weights to propagate activations, exactly as
  on a float32 model. Narrowing an updated block rounds its new weights to 16 bits, which the
  float32 path does too when it casts the model to its 16-bit export dtype before saving.

Only floating parameters are touched (integer/packed weights and buffers such as rotary
frequencies, already float32, are not). Own code: torch's autocast only narrows (it cannot
compute a 16-bit model in float32), accelerate's hooks move devices, not dtypes, and
transformers has no per-module upcast.
"""
from __future__ import annotations

from typing import Iterable


def _own_float_params(module):
    return [p for p in module.parameters(recurse=False) if p.is_floating_point()]


class Float32Compute:
    """Hooks that widen a 16-bit model's modules to ``dtype`` (float32) while they compute.

    ``remove()`` narrows any widened module back and removes the hooks; use it as a context
    manager or call it when done."""

    def __init__(self, model, dtype=None, blocks: Iterable | None = None,
                 keep_calls: bool | None = None):
        import torch
        self.torch = torch
        # per-call modules get their own 16-bit tensor back (no new allocation, the loaded
        # bits) unless they may be written between calls (lazy mode: llm-compressor updates
        # lm_head when it is targeted) -- then the float32 values are cast back
        self.keep_calls = (not blocks) if keep_calls is None else keep_calls
        self.dtype = dtype or torch.float32
        self.handles = []
        self.saved: dict = {}            # id(param) -> (param, its 16-bit dtype)
        self.active = None               # the widened block (lazy mode)
        self.block_of: dict = {}         # module -> the block it lies in
        self.block_mods: dict = {}       # id(block) -> its modules with own float params
        for b in blocks or ():
            mods = [m for m in b.modules() if _own_float_params(m)]
            self.block_mods[id(b)] = mods
            for m in mods:
                self.block_of[m] = b
        self.calls = 0
        for m in model.modules():
            if not _own_float_params(m):
                continue
            if m in self.block_of:
                self.handles.append(m.register_forward_pre_hook(self._enter_block))
            else:
                self.handles.append(m.register_forward_pre_hook(self._widen_hook))
                self.handles.append(m.register_forward_hook(self._narrow_hook))

    # -- casting ----------------------------------------------------------------
    def _widen(self, module, keep: bool = False) -> None:
        """``keep``: remember the 16-bit tensor itself (restored as is: the loaded bits, and a
        file mapping stays a mapping), else only its dtype (the widened values are cast back)."""
        torch = self.torch
        with torch.inference_mode(False), torch.no_grad():
            for p in _own_float_params(module):
                if p.dtype != self.dtype and id(p) not in self.saved:
                    self.saved[id(p)] = (p, p.data if keep else p.dtype)
                    p.data = p.data.to(self.dtype)

    def _narrow(self, module, write_back: bool = False) -> None:
        """``write_back`` (lazy blocks): the float32 values, possibly updated, are rounded into
        the kept 16-bit tensor itself -- a weight mapped from its file (transformers maps
        safetensors copy-on-write) then holds one private copy, not the file's pages plus a
        new tensor (measured: RSS grew by ~2x a layer's 16-bit size per layer without it)."""
        torch = self.torch
        with torch.inference_mode(False), torch.no_grad():
            for p in _own_float_params(module):
                got = self.saved.pop(id(p), None)
                if got is None:
                    continue
                old = got[1]
                if not isinstance(old, torch.Tensor):
                    p.data = p.data.to(old)
                    continue
                if write_back:
                    old.copy_(p.data)
                p.data = old

    # -- hooks ------------------------------------------------------------------
    def _widen_hook(self, module, args):
        self.calls += 1
        self._widen(module, keep=True)

    def _narrow_hook(self, module, args, output):
        # inference: the loaded tensor back as is; lazy mode (values may be written, e.g. a
        # targeted lm_head): the float32 values rounded back into it
        self._narrow(module, write_back=not self.keep_calls)

    def _enter_block(self, module, args):
        block = self.block_of[module]
        if self.active is not block:
            self.narrow_block()
            # listed again at each entry: llm-compressor swaps modules inside a block after the
            # hooks are set (MoE experts become per-expert Linears for calibration)
            self.block_mods[id(block)] = [m for m in block.modules() if _own_float_params(m)]
            for m in self.block_mods[id(block)]:
                self._widen(m, keep=True)
            self.active = block
            self.calls += 1

    def narrow_block(self) -> None:
        """Narrow the widened block (lazy mode) back to its 16-bit dtype."""
        if self.active is not None:
            for m in self.block_mods[id(self.active)]:
                self._narrow(m, write_back=True)
            self.active = None

    def remove(self) -> None:
        self.narrow_block()
        torch = self.torch
        with torch.inference_mode(False), torch.no_grad():
            for p, old in list(self.saved.values()):   # per-call leftovers (an exception)
                p.data = old if isinstance(old, torch.Tensor) else p.data.to(old)
        self.saved.clear()
        for h in self.handles:
            h.remove()
        self.handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def storage_dtype(source: str | None, compute: str) -> str:
    """The dtype to load weights in for ``compute``: a 16-bit source stays 16-bit when the
    computation is float32 (widened per module); anything else loads as ``compute``."""
    if compute == "float32" and source in ("bfloat16", "float16"):
        return source
    return compute
