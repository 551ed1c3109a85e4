"""Recognise a full disk (ENOSPC / EDQUOT) wherever it surfaces, so it is reported as the
environment problem it is -- one message naming the step, the path and the space needed --
and not as "bug in step ...".

Libraries do not all raise ``OSError(errno.ENOSPC)``: numpy's ``tofile``/memmap says
"Not enough free space to write N bytes" (no errno), safetensors' Rust writer says
"No space left on device (os error 28)", torch's zip writer says "file write failed". So the
check walks the exception chain for the errno, then for the known messages, and as a last
resort asks the filesystem the step was writing to whether it is (nearly) full.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_PATTERNS = re.compile(
    r"no space left on device|not enough free space|disk quota exceeded|\benospc\b|"
    r"\bos error 28\b|\[errno 28\]|file write failed|disk full", re.IGNORECASE)
_NEEDED = re.compile(r"(?:write|allocate|need(?:s|ed)?)\s+(\d+)\s+bytes", re.IGNORECASE)
#: a filesystem with less free space than this (or under 1 % of its size) counts as full
NEARLY_FULL_BYTES = 4 << 20


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def free_bytes(path: str | Path) -> tuple[int, int, Path] | None:
    """(free, total, existing ancestor) of the filesystem holding ``path``."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        u = shutil.disk_usage(p)
    except OSError:
        return None
    return u.free, u.total, p


def nearly_full(path: str | Path) -> bool:
    fb = free_bytes(path)
    return fb is not None and (fb[0] < NEARLY_FULL_BYTES or fb[0] < fb[1] // 100)


def disk_full_info(exc: BaseException, near: str | Path | None = None,
                   guess: bool = True) -> dict | None:
    """``{"path", "needed", "free", "detail"}`` when ``exc`` is a full disk, else None.

    ``near`` is where the failing code was writing (a step's output folder); it stands in
    for the path when the exception names none, and (with ``guess``) answers the
    last-resort check: an unrecognised error while that filesystem is nearly full."""
    hit, path, needed, detail = False, None, None, str(exc)
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
            hit, path = True, path or e.filename
            detail = os.strerror(e.errno)
        elif _PATTERNS.search(str(e)):
            hit = True
            detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else detail
        m = _NEEDED.search(str(e))
        if m and needed is None:
            needed = int(m.group(1))
    if not hit and not (guess and near is not None and nearly_full(near)):
        return None
    path = str(path or near or "")
    fb = free_bytes(path) if path else None
    return {"path": path, "needed": needed, "free": fb[0] if fb else None, "detail": detail}


def human(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def describe(info: dict) -> str:
    """The one line a user reads."""
    need = f" (a write of {human(info['needed'])})" if info.get("needed") else ""
    free = f" ({human(info['free'])} free there)" if info.get("free") is not None else ""
    return (f"no space left on device writing {info['path'] or '(path unknown)'}{need}{free}; "
            f"{info.get('detail', '')}".rstrip("; ")
            + ". Free space (python -m slim.cache gc), or point SLIM_CACHE_DIR / paths.builds "
              "at a larger disk, then rerun: finished steps are kept in the cache")
