"""Load, validate and run probe suites: the shipped ``data/probes/*.jsonl`` and a user's own
directory of JSONL files in the same schema (``probes.data=<dir>``).

Each line of a probe file is one item::

    {"id": "factual-capital-france",
     "category": "behavioral/factual",
     "messages": [{"role": "user", "content": "What is the capital of France?"}],
     "check": {"type": "contains_any", "answers": ["Paris"]}}

Optional keys: ``notes`` (free text, ignored), ``level`` (difficulty, a positive
integer; generated families use 1-3; reports and gates ignore it).  Categories are
``<family>/<name>``; the family is usually the file's stem.  Every file in the
directory is validated whenever any item is loaded, so a broken file is
reported at once, with its file, line and the field at fault. Several
directories load as one suite (ids unique across all of them).
"""
from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Callable, Iterable

from slim.errors import SlimError
from slim.probes.checkers import check_output, validate_check
from slim.probes.leaks import scan_pii, secret_in_text

ChatFn = Callable[[list[dict], int], str]

_ROLES = ("system", "user", "assistant")
_REQUIRED = ("id", "category", "messages", "check")
_OPTIONAL = ("notes", "level")


def default_data_dir() -> Path:
    from slim.paths import DATA

    return DATA / "probes"


class ProbeDataError(SlimError):
    reason = "invalid_probe_data"


def _validate_item(item: object) -> str | None:
    """The first problem with one decoded item, or None."""
    if not isinstance(item, dict):
        return "item is not a JSON object"
    missing = [k for k in _REQUIRED if k not in item]
    if missing:
        return f"missing key(s) {missing}"
    unknown = sorted(set(item) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        return f"unknown key(s) {unknown} (allowed: {list(_REQUIRED + _OPTIONAL)})"
    lvl = item.get("level")
    if lvl is not None and (not isinstance(lvl, int) or isinstance(lvl, bool) or lvl < 1):
        return f"'level' must be a positive integer (difficulty), got {lvl!r}"
    if not isinstance(item["id"], str) or not item["id"].strip():
        return "'id' must be a non-empty string"
    cat = item["category"]
    if not isinstance(cat, str) or cat.count("/") != 1 or not all(cat.split("/")):
        return f"'category' must look like 'family/name', got {cat!r}"
    if any(ch in cat for ch in "*?[] "):
        return f"'category' {cat!r} must not contain glob characters or spaces"
    msgs = item["messages"]
    if not isinstance(msgs, list) or not msgs:
        return "'messages' must be a non-empty list"
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            return f"messages[{i}] must be an object with exactly 'role' and 'content'"
        if m["role"] not in _ROLES:
            return f"messages[{i}].role {m['role']!r} is not one of {list(_ROLES)}"
        if not isinstance(m["content"], str) or not m["content"].strip():
            return f"messages[{i}].content must be a non-empty string"
        if m["role"] == "system" and i != 0:
            return f"messages[{i}]: a system message may only come first"
    if msgs[-1]["role"] != "user":
        return "the last message must have role 'user'"
    try:
        validate_check(item["check"])
    except ValueError as e:
        return str(e)
    return None


def _read_file(path: Path) -> list[tuple[int, dict]]:
    items = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ProbeDataError(f"cannot read probe file {path}: {e}") from e
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise ProbeDataError(f"{path}:{lineno}: invalid JSON: {e.msg} (column {e.colno})") from e
        problem = _validate_item(item)
        if problem:
            raise ProbeDataError(f"{path}:{lineno}: {problem}")
        items.append((lineno, item))
    return items


def _dirs(data_dir) -> list[Path]:
    if data_dir is None:
        return [default_data_dir()]
    if isinstance(data_dir, (str, Path)):
        return [Path(data_dir)]
    return [Path(d) for d in data_dir]


def probe_files(data_dir: str | Path) -> list[Path]:
    """The ``*.jsonl`` files of one probe data directory, sorted; an error when there are none."""
    d = Path(data_dir)
    if not d.is_dir():
        raise ProbeDataError(f"probe data directory {d} does not exist")
    files = sorted(d.glob("*.jsonl"))
    if not files:
        raise ProbeDataError(f"no probe files (*.jsonl) in {d}")
    return files


def _load_all(data_dir) -> list[dict]:
    """All items of every ``*.jsonl`` file in *data_dir* (one directory or several, in order),
    validated, in directory, file, then line order. Ids must be unique across all of them."""
    seen: dict[str, str] = {}
    out: list[dict] = []
    for d in _dirs(data_dir):
        for path in probe_files(d):
            for lineno, item in _read_file(path):
                where = f"{path}:{lineno}"
                if item["id"] in seen:
                    raise ProbeDataError(f"{where}: duplicate id {item['id']!r} "
                                         f"(first at {seen[item['id']]})")
                seen[item["id"]] = where
                out.append(item)
    return out


def available_categories(data_dir=None) -> list[str]:
    """Sorted category names present in the probe files of one directory or several."""
    return sorted({it["category"] for it in _load_all(data_dir)})


def load_items(
    categories: Iterable[str],
    max_per_category: int | None = None,
    data_dir=None,
) -> list[dict]:
    """Validated items whose category matches any of *categories* (fnmatch globs: "behavioral/*", "*").

    Selection is deterministic: file order (files sorted by name, then line
    order), at most the first *max_per_category* items of each category.  A
    pattern that matches no category is an error naming what is available.
    """
    patterns = [categories] if isinstance(categories, str) else list(categories)
    if max_per_category is not None and (
        not isinstance(max_per_category, int) or isinstance(max_per_category, bool) or max_per_category < 1
    ):
        raise SlimError(f"max_per_category must be a positive integer or None, got {max_per_category!r}")
    items = _load_all(data_dir)
    if not patterns:
        return []
    cats = sorted({it["category"] for it in items})
    for p in patterns:
        if not isinstance(p, str) or not p:
            raise SlimError(f"probe category pattern must be a non-empty string, got {p!r}")
        if not any(fnmatch.fnmatchcase(c, p) for c in cats):
            raise SlimError(
                f"probe category {p!r} matches nothing; available: {', '.join(cats)}",
                reason="invalid_config",
            )
    taken: dict[str, int] = {}
    selected = []
    for it in items:
        c = it["category"]
        if not any(fnmatch.fnmatchcase(c, p) for p in patterns):
            continue
        if max_per_category is not None and taken.get(c, 0) >= max_per_category:
            continue
        taken[c] = taken.get(c, 0) + 1
        selected.append(it)
    return selected


def prompt_text(item: dict) -> str:
    """All message contents of an item, joined (what the model was shown)."""
    return "\n".join(m["content"] for m in item["messages"])


def score_item(item: dict, output: str) -> dict:
    """Check one output against its item; scan it for leaks.

    Returns ``{"id", "category", "output", "passed", "detail", "leaks"}`` where
    ``leaks`` is a list of ``{"kind", "value"}``: PII/secret patterns absent
    from the prompt (:func:`slim.probes.leaks.scan_pii`) plus, for ``no_secret``
    items, ``{"kind": "secret", "value": <secret>, "how": <transform>}`` when the
    secret was disclosed.
    """
    output = output if isinstance(output, str) else ""
    passed, detail = check_output(item["check"], output)
    leaks = scan_pii(output, prompt_text(item))
    if item["check"]["type"] == "no_secret":
        how = secret_in_text(item["check"]["secret"], output)
        if how:
            leaks.append({"kind": "secret", "value": item["check"]["secret"], "how": how})
    return {
        "id": item["id"],
        "category": item["category"],
        "output": output,
        "passed": passed,
        "detail": detail,
        "leaks": leaks,
    }


def run_items(chat: ChatFn, items: list[dict], max_tokens: int, progress: bool = True) -> list[dict]:
    """Ask *chat* every item (greedy decoding is the caller's job) and score each output.

    ``chat(messages, max_tokens) -> str``.  Returns one :func:`score_item`
    result per item, in item order.  Shows a tqdm progress bar unless
    *progress* is false.
    """
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    it = items
    if progress and tqdm is not None:
        it = tqdm(items, desc="probes", unit="item", leave=False)
    results = []
    for item in it:
        output = chat([dict(m) for m in item["messages"]], max_tokens)
        if output is None:
            output = ""
        if not isinstance(output, str):
            raise SlimError(
                f"probe chat function returned {type(output).__name__} for item {item['id']!r}, expected str"
            )
        results.append(score_item(item, output))
    return results
