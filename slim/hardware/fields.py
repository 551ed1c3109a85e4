"""Read a key of a tier or method config given as a dict, a DictConfig or an object."""
from __future__ import annotations

from typing import Any


def get(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` or ``obj.key``; ``default`` when absent or None."""
    try:
        v = obj[key]
    except (KeyError, TypeError, IndexError):
        v = getattr(obj, key, default)
    return default if v is None else v
