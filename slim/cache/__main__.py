"""``python -m slim.cache ls|du|verify|gc``: inspect and maintain the step cache.

gc keeps every entry reachable from a build folder's ``steps.json`` (under
``--builds``, default ./builds) and removes the rest; ``--dry-run`` only lists.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import slim  # noqa: F401
from slim.cache.store import ObjectStore


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


def reachable_keys(builds: Path) -> dict[str, list[str]]:
    keep: dict[str, list[str]] = {}
    if not builds.is_dir():
        return keep
    for f in sorted(builds.glob("**/steps.json")):
        if ".staging" in f.parts:
            continue
        try:
            for s in json.loads(f.read_text()):
                keep.setdefault(s["key"], []).append(f.parent.name)
        except (ValueError, KeyError):
            print(f"warning: cannot read {f}", file=sys.stderr)
    return keep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m slim.cache", description=__doc__)
    ap.add_argument("--cache", help="cache dir (default $SLIM_CACHE_DIR or ~/.cache/slim)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ls", help="list entries: key, step, size, age")
    sub.add_parser("du", help="total size, per step kind")
    v = sub.add_parser("verify", help="re-hash every entry; report (and with --evict remove) corrupt ones")
    v.add_argument("--evict", action="store_true")
    g = sub.add_parser("gc", help="remove entries not reachable from build folders")
    g.add_argument("--builds", action="append", default=None,
                   help="builds folder(s) whose steps.json keep entries alive (default ./builds)")
    g.add_argument("--dry-run", action="store_true")
    a = ap.parse_args(argv)
    store = ObjectStore(a.cache)
    entries = store.entries()

    if a.cmd == "ls":
        print(f"{'key':34} {'step':28} {'size':>10}  created")
        for e in entries:
            m = e.manifest
            print(f"{e.key:34} {m['material'].get('step', '?'):28} {_human(store.size(e)):>10}  "
                  f"{m.get('created', '')}")
        print(f"{len(entries)} entries in {store.root}")
    elif a.cmd == "du":
        by_kind: dict[str, int] = {}
        for e in entries:
            k = e.manifest["material"].get("step", "?")
            by_kind[k] = by_kind.get(k, 0) + store.size(e)
        for k, n in sorted(by_kind.items(), key=lambda kv: -kv[1]):
            print(f"{_human(n):>10}  {k}")
        print(f"{_human(sum(by_kind.values())):>10}  total ({len(entries)} entries, {store.root})")
    elif a.cmd == "verify":
        bad = 0
        for e in entries:
            problems = store.verify(e)
            if problems:
                bad += 1
                print(f"CORRUPT {e.key} ({e.manifest['material'].get('step', '?')}): "
                      + "; ".join(problems))
                if a.evict:
                    store.evict(e.key)
                    print(f"  evicted {e.key}; the next build recomputes it")
        print(f"{len(entries) - bad} ok, {bad} corrupt")
        return 1 if bad and not a.evict else 0
    elif a.cmd == "gc":
        builds = [Path(b) for b in (a.builds or ["builds"])]
        keep: dict[str, list[str]] = {}
        for b in builds:
            for k, names in reachable_keys(b).items():
                keep.setdefault(k, []).extend(names)
        freed = 0
        for e in entries:
            if e.key in keep:
                continue
            n = store.size(e)
            freed += n
            print(f"{'would remove' if a.dry_run else 'removed'} {e.key} "
                  f"({e.manifest['material'].get('step', '?')}, {_human(n)})")
            if not a.dry_run:
                store.evict(e.key)
        for p in store.stale_tmp():
            print(f"{'would remove' if a.dry_run else 'removed'} stale temp {p.name}")
            if not a.dry_run:
                shutil.rmtree(p, ignore_errors=True)
        print(f"{'would free' if a.dry_run else 'freed'} {_human(freed)}; kept {len(keep)} "
              f"reachable keys from {', '.join(map(str, builds))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
