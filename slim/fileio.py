"""slim's one canonical JSON and one atomic write.

Canonical JSON is sorted keys and ASCII escapes; ``indent=None`` is the compact
form (cache keys, the signed in-toto statement), ``indent=2`` the readable form
of files people open (report.json, steps.json, summaries), whose bytes also feed
``parent.digest``. Both are the same serializer: only whitespace differs, and
each caller's bytes are exactly what they were before the helpers were merged.

An atomic write goes to a unique temp file in the target's folder, is fsynced,
gets its final mode and is renamed over the target, so a reader (or a parallel
sweep member) sees the old file or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


def canonical_json(obj: Any, *, indent: int | None = None,
                   default: Callable[[Any], Any] | None = None) -> str:
    """Sorted keys, ASCII only; compact without ``indent``."""
    seps = (",", ":") if indent is None else None
    return json.dumps(obj, sort_keys=True, separators=seps, indent=indent, ensure_ascii=True,
                      default=default)


@contextmanager
def atomic_path(path: str | os.PathLike, mode: int = 0o644, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it replaces ``path``, on error it is removed.

    For writers that want a file name (matplotlib, safetensors). ``keep_suffix``
    ends the temp name with ``path``'s suffix, for writers that pick a format by it.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.",
                               suffix=".tmp" + (path.suffix if keep_suffix else ""), dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (the temp file is 0600 until it gets ``mode``)."""
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str, mode: int = 0o644) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def write_json(path: str | os.PathLike, obj: Any, *, default: Callable[[Any], Any] | None = None,
               newline: bool = True) -> None:
    """The readable canonical form (indent 2), written atomically."""
    atomic_write_text(path, canonical_json(obj, indent=2, default=default) + ("\n" if newline else ""))
