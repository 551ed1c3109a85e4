"""llm-compressor AWQ on a machine with no accelerator: skip its CPU memory pinning.

What breaks (llmcompressor 0.14, torch 2.13 CPU build): ``AWQModifier._apply_smoothing``
calls ``IntermediatesCache.pin_memory(batch)`` for every cached batch before its
grid search, "for faster onloading". Pinning page-locks host memory for fast
host→device copies; torch's CPU-only build refuses it with
``RuntimeError: Cannot access accelerator device when none is available.``, so AWQ
cannot run at all on a CPU-only machine.

Why skipping is safe: pinned memory only speeds up copies to an accelerator. With
no accelerator every tensor stays on the CPU, and ``IntermediatesCache`` onloads
pinned and unpinned tensors the same way, so skipping the pin changes nothing but
the failure.

Scope: :func:`cpu_pin_memory_workaround` patches ``IntermediatesCache.pin_memory``
to a no-op only inside the ``with`` block and only when :func:`pinning_fails` —
no accelerator *and* ``Tensor.pin_memory()`` raises here. On a GPU machine, or
once torch or llm-compressor stop failing, it does nothing.

``tests/methods/test_llmc_cpu_compat.py`` runs AWQ without the patch and expects
this failure (so it fails once upstream fixes it and this module can go), and with
the patch expects success (so it fails if the patch stops working).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

#: the error torch raises when pinning memory with no accelerator
ERROR_TEXT = "Cannot access accelerator device when none is available"


def pinning_fails() -> bool:
    """True when there is no accelerator and pinning CPU memory raises (the failing case)."""
    import torch
    if torch.accelerator.is_available():
        return False
    try:
        torch.empty(1).pin_memory()
    except RuntimeError:
        return True
    return False


def _no_pin(self, batch_index, input_names=None) -> None:  # same signature as upstream
    return None


@contextlib.contextmanager
def cpu_pin_memory_workaround() -> Iterator[bool]:
    """Within the block, ``IntermediatesCache.pin_memory`` is a no-op if pinning fails here.

    Yields whether the patch was applied (recorded in the step's compress.json).
    """
    if not pinning_fails():
        yield False
        return
    from llmcompressor.pipelines.cache import IntermediatesCache
    original = IntermediatesCache.__dict__["pin_memory"]
    IntermediatesCache.pin_memory = _no_pin
    try:
        yield True
    finally:
        IntermediatesCache.pin_memory = original
