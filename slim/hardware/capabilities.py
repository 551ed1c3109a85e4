"""Can a tier run a method? Compare what the method declares with what the tier declares.

A method declares ``formats`` (what its artifact is) and ``requires`` (capabilities the
hardware must have, e.g. ``{fp8: true}``; a number means "at least", e.g.
``{compute_capability: 8.0}``). A tier declares ``capabilities``, the ``formats`` it runs
natively and the formats it ``emulates``. No code here knows any tier or method by name.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slim.hardware.fields import get as _get


def _as_list(v: Any) -> list:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return list(v)


def _problems(method: Any, hw: Any, allow_emulation: bool) -> list[str]:
    """What stops ``hw`` running ``method``: one phrase per problem (empty: runnable)."""
    hw_name = _get(hw, "name", "?")
    backend = _get(hw, "backend", "?")
    caps = _get(hw, "capabilities", {}) or {}
    out = []
    requires = _get(method, "requires", {}) or {}
    for cap in requires:
        want = requires[cap]
        if want is None or want is False:
            continue
        have = _get(caps, cap, None)
        if have is None and cap in ("compute_capability", "memory_gb", "bandwidth_gbs"):
            have = _get(hw, cap, None)
        if isinstance(want, bool):
            if have is not True:
                out.append(f"needs capability {cap}, which hardware {hw_name} ({backend}) does not have")
        elif isinstance(want, (int, float)):
            if not isinstance(have, (int, float)) or isinstance(have, bool) or have < want:
                shown = "none" if have is None else f"{have}"
                out.append(f"needs {cap} ≥ {want}, which hardware {hw_name} ({backend}) does not "
                           f"have ({cap}: {shown})")
        elif have != want:
            out.append(f"needs {cap} = {want}, which hardware {hw_name} ({backend}) does not have")
    fmts = [str(f) for f in _as_list(_get(method, "formats", []))]
    native = [str(f) for f in _as_list(_get(hw, "formats", []))]
    emulated = [str(f) for f in _as_list(_get(hw, "emulates", []))]
    if fmts and not any(f in native for f in fmts):
        can_emulate = [f for f in fmts if f in emulated]
        if not (can_emulate and allow_emulation):
            msg = (f"produces {', '.join(fmts)}, which hardware {hw_name} ({backend}) does not run "
                   f"natively (it runs {', '.join(native) or 'no format'})")
            if can_emulate:
                msg += (f"; it can run {', '.join(can_emulate)} only by emulation: "
                        f"set allow_emulation=true to allow that")
            out.append(msg)
    return out


def _is_concrete(method: Any) -> bool:
    """method=auto picks among others; it is not itself something a tier runs."""
    return _get(method, "family", None) != "auto"


def runnable_methods(hw: Any, methods: Mapping[str, Any] | None,
                     allow_emulation: bool = False) -> list[str]:
    """Names (keys of ``methods``) of the methods ``hw`` can run, in the given order."""
    if not methods:
        return []
    return [name for name, m in methods.items()
            if _is_concrete(m) and not _problems(m, hw, allow_emulation)]


def check(method: Any, hw: Any, allow_emulation: bool = False,
          methods: Mapping[str, Any] | None = None) -> list[str]:
    """One error per reason ``hw`` cannot run ``method``; empty when it can.

    Each message names the method, the tier, what is missing, and — when ``methods``
    (every method config, by name) is given — the methods this tier can run instead.
    """
    if not _is_concrete(method):
        return []
    problems = _problems(method, hw, allow_emulation)
    if not problems:
        return []
    name = _get(method, "name", "?")
    suffix = ""
    if methods is not None:
        alts = [m for m in runnable_methods(hw, methods, allow_emulation) if m != name]
        suffix = ("; methods this tier runs: " + ", ".join(alts) if alts
                  else "; no configured method runs on this tier")
    return [f"method {name} {p}{suffix}" for p in problems]
