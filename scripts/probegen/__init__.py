"""Seeded generator of the shipped probe files (``data/probes/*.jsonl``); stdlib only.

Why generated: retention per category is only decided when a category has enough
items the parent passes; ~30 hand-written items give intervals 0.3-0.95 wide.  Each
family module yields items over difficulty levels (``level`` 1-3, tuned so the default
parent passes a useful fraction of each level, see data/README.md); the hand-written
items of ``handwritten.jsonl`` come first, unchanged, so ``probes=quick`` (the first
items of each category) runs the same prompts as before.  Generated items follow with
levels interleaved (1, 2, 3, 1, 2, 3 ...), so any prefix is balanced across levels.

Every family draws from its own ``random.Random(seed)``: editing one family does not
reshuffle another, and running the generator twice gives byte-identical files.
"""
from __future__ import annotations

import json
import random
from itertools import zip_longest
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
FILES = ("behavioral.jsonl", "safety.jsonl", "leakage.jsonl")


def item(id: str, category: str, user: str, check: dict, level: int,
         system: str | None = None) -> dict:
    """One probe item in the shipped schema (``level`` is the optional difficulty field)."""
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return {"id": id, "category": category, "messages": msgs, "check": check, "level": level}


def interleave(by_level: list[list[dict]]) -> list[dict]:
    """Round-robin over the levels' lists, so a first-N selection is level-balanced."""
    return [it for group in zip_longest(*by_level) for it in group if it is not None]


def levels(prefix: str, category: str, make: Callable, per_level: int | tuple[int, int, int],
           seed: int) -> list[dict]:
    """``per_level`` distinct items (one count, or one per level) for each of levels 1-3,
    drawn by ``make(rng, level)``.

    ``make`` returns ``(user prompt, check)`` or None to reject a draw; ids are
    ``<prefix>-l<level>-<n>``.  Raises when a level cannot yield enough distinct prompts
    (instead of looping for ever after a table is shrunk).
    """
    rng = random.Random(seed)
    counts = per_level if isinstance(per_level, tuple) else (per_level,) * 3
    out = []
    for level, want in zip((1, 2, 3), counts):
        rows: list[dict] = []
        seen: set[str] = set()
        for _ in range(200 * want):
            if len(rows) == want:
                break
            got = make(rng, level)
            if got is None or got[0] in seen:
                continue
            seen.add(got[0])
            rows.append(item(f"{prefix}-l{level}-{len(rows) + 1:03d}", category, got[0], got[1], level))
        if len(rows) < want:
            raise ValueError(f"{category} level {level}: only {len(rows)} distinct items of {want}")
        out.append(rows)
    return interleave(out)


def handwritten() -> list[dict]:
    lines = (HERE / "handwritten.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(ln) for ln in lines if ln.strip()]


def build() -> dict[str, str]:
    """File name -> file text for every shipped probe file."""
    from . import counting, extraction, factual, formats, leakage, numeric, safety

    hand = handwritten()
    generated = (factual.items() + formats.items() + numeric.arithmetic() + extraction.items()
                 + numeric.units() + counting.items() + safety.items() + leakage.items())
    out: dict[str, list[dict]] = {f: [] for f in FILES}
    # category order in a file follows first appearance: the hand-written categories, then new ones
    order: list[str] = []
    for it in hand + generated:
        if it["category"] not in order:
            order.append(it["category"])
    by_cat: dict[str, list[dict]] = {c: [] for c in order}
    for it in hand + generated:
        by_cat[it["category"]].append(it)
    ids: set[str] = set()
    for cat in order:
        fname = cat.split("/")[0] + ".jsonl"
        for it in by_cat[cat]:
            if it["id"] in ids:
                raise ValueError(f"duplicate generated id {it['id']!r}")
            ids.add(it["id"])
            out[fname].append(it)
    return {f: "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in rows) for f, rows in out.items()}


def differences(data_dir: Path) -> list[str]:
    """Files in *data_dir* whose content is not what :func:`build` generates."""
    bad = []
    for name, text in build().items():
        p = data_dir / name
        if not p.exists() or p.read_text(encoding="utf-8") != text:
            bad.append(name)
    return bad
