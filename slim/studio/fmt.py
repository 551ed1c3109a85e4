"""Number formatting for the studio's templates ("–" where a value is missing), matching the
precision of report.md and ``python -m slim.registry ls``."""
from __future__ import annotations

import datetime as _dt


def num(v, spec: str = ".3f") -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "–"
    return format(v, spec)


def mb(b) -> str:
    return f"{b / 1e6:.1f} MB" if isinstance(b, (int, float)) and not isinstance(b, bool) else "–"


def gib(b) -> str:
    return f"{b / 2**30:.2f} GiB" if isinstance(b, (int, float)) and not isinstance(b, bool) else "–"


def sort_key(v) -> str:
    """data-sort attribute: numbers as numbers, missing values last."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        return repr(float(v))
    return "" if v is None else str(v)


def yesno(v) -> str:
    return "yes" if v is True else "no" if v is False else "–"


def interval(lo, hi, spec: str = ".2f") -> str:
    if lo is None or hi is None:
        return "–"
    return f"{format(lo, spec)}–{format(hi, spec)}"


def short(d, n: int = 12) -> str:
    if not d:
        return "?"
    return str(d).split(":", 1)[-1][:n]


def when(t) -> str:
    if not isinstance(t, (int, float)):
        return "–"
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def sig_class(state: str) -> str:
    s = str(state or "")
    if s == "signed+valid":
        return "ok"
    if "INVALID" in s:
        return "bad"
    return "warn"


def status_class(status: str) -> str:
    return {"accepted": "ok", "rejected": "bad", "inconclusive": "warn"}.get(str(status), "muted")


def tier_cell(fits: list[dict], tier: str, target: str | None) -> dict:
    """Cell of a tier column: text, css class, tooltip, sort value."""
    f = next((x for x in fits if x.get("tier") == tier), None)
    if f is None:
        return {"text": "–", "cls": "muted", "title": "artifact shape unreadable", "sort": ""}
    mem = (f"{'fits' if f['fits'] else 'does not fit'}: {gib(f.get('total_bytes'))} needed, "
           f"{gib(f.get('usable_bytes'))} usable")
    if f["runs"] == "no":
        text, cls = "no runtime", "bad"
    elif not f["fits"]:
        text, cls = "✗", "bad"
    elif f["runs"] == "emulated":
        text, cls = "✓ emu", "warn"
    else:
        text, cls = "✓", "ok"
    title = f"{tier}: {mem}; runs {f['runs']}" + (f" ({f['why']})" if f["runs"] != "native" else "")
    return {"text": text, "cls": cls, "title": title, "target": tier == target,
            "sort": "1" if cls in ("ok", "warn") else "0"}


def breakable(name: str):
    """A long build name that may wrap after its hyphens (escaped, with <wbr>)."""
    from markupsafe import Markup, escape
    return Markup("-<wbr>").join(escape(p) for p in str(name).split("-"))
