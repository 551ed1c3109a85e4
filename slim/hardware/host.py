"""What this host has free right now (RAM, and VRAM when an NVIDIA GPU is visible), and the
memory preflight: a step whose estimated need (:func:`slim.steps.base.memory_need`) exceeds
what is available fails before it starts, with one message naming the step, the need, what is
free and what to do — instead of an OOM kill halfway through a multi-GB step.

RAM is psutil's ``available`` (MemAvailable: free plus reclaimable page cache), the figure the
kernel's OOM decisions follow. VRAM comes from ``nvidia-smi`` so the build's own process never
creates a CUDA context just to ask. ``SLIM_MEMORY_CHECK=off`` skips the check (e.g. when swap
or zram makes a tight build worth trying).
"""
from __future__ import annotations

import os
import shutil
import subprocess

from slim.units import fmt_bytes


def free_ram() -> tuple[int, int]:
    """(available, total) bytes of RAM."""
    import psutil
    vm = psutil.virtual_memory()
    return int(vm.available), int(vm.total)


def free_vram() -> int | None:
    """Free bytes on the first NVIDIA GPU, None when there is none (or no nvidia-smi)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
        return int(out.split()[0]) << 20
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None


def check_enabled() -> bool:
    return os.environ.get("SLIM_MEMORY_CHECK", "on").lower() not in ("off", "0", "false", "no")


def preflight_problem(step_id: str, need: dict, avail: int | None = None,
                      vram: int | None = None) -> str | None:
    """The message for a step that does not fit in what is free now (None: it fits)."""
    if avail is None:
        avail, total = free_ram()
    else:
        total = None
    todo = ("free memory (other programs; fewer parallel members, hydra.launcher.n_jobs), "
            "run it on a machine with more RAM, or pick a smaller model; "
            "SLIM_MEMORY_CHECK=off skips this check")
    if need["ram"] > avail:
        of = f" of {fmt_bytes(total)}" if total else ""
        return (f"step {step_id} needs about {fmt_bytes(need['ram'])} of RAM ({need['why']}); "
                f"this host has {fmt_bytes(avail)} available{of}. To build: {todo}")
    if need.get("vram") and vram is not None and need["vram"] > vram:
        return (f"step {step_id} needs about {fmt_bytes(need['vram'])} of GPU memory "
                f"({need['why']}); the GPU has {fmt_bytes(vram)} free. To build: free the GPU, "
                f"use a bigger one, or hide it (CUDA_VISIBLE_DEVICES=) to run on the CPU")
    return None
