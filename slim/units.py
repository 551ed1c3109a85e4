"""One unit convention for sizes and memory: binary (KiB, MiB, GiB = 2¹⁰, 2²⁰, 2³⁰ bytes).

Memory is binary in hardware (an "8 GB" Mac or a "12 GB" GPU holds 8 or 12 GiB), and every
fit compares file bytes with memory, so files are shown in the same unit. A tier's
``memory_gb``, ``reserve_gb`` and ``runtime_overhead_gb`` are read as GiB — the amount the
vendor's "GB" means for RAM. Only bandwidth (``bandwidth_gbs``) is decimal, GB/s = 10⁹ B/s,
as vendors quote it.
"""
from __future__ import annotations

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


def fmt_bytes(n: float | None) -> str:
    """``512.0 MiB``, ``5.33 GiB``, ``-1.20 GiB``; ``–`` when unknown."""
    if not isinstance(n, (int, float)) or isinstance(n, bool):
        return "–"
    n = float(n)
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n >= GIB:
        return f"{sign}{n / GIB:.2f} GiB"
    if n >= MIB:
        return f"{sign}{n / MIB:.1f} MiB"
    if n >= KIB:
        return f"{sign}{n / KIB:.1f} KiB"
    return f"{sign}{int(n)} B"


def mib(n: float | None) -> float | None:
    """Bytes as MiB (a number, for CSV columns headed MiB)."""
    return n / MIB if isinstance(n, (int, float)) and not isinstance(n, bool) else None
