"""The build registry: every folder under ``builds/`` with an ``entry.json``.

    python -m slim.registry [--builds DIR] [--key-dir DIR] [--key PUB ...] ls
    python -m slim.registry [--builds DIR] show <name>
    python -m slim.registry [--builds DIR] lineage <name>

``ls`` is the "compression page": the variants of each parent with size,
bits per weight, probe retention, KLD, fit, status and signature state.
"""
from __future__ import annotations

from slim.report.gates import failed_gates
from slim.report.headline import headline_retention

import argparse
import datetime as _dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from slim.errors import SlimError
from slim.units import fmt_bytes
from slim.fileio import write_json

ENTRY_NAME = "entry.json"
ENTRY_FIELDS = ("name", "parent_id", "parent_digest", "parent_build", "method", "hardware", "probes",
                "format", "bytes", "bpw", "headline_retention", "kld_mean", "status", "created", "fits")


# ---------------------------------------------------------------- entries

def _get(d: Any, *path, default=None):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _fits(report: dict) -> Any:
    fit = report.get("fit")
    if isinstance(fit, dict):
        for k in ("fits", "ok", "fit"):
            if k in fit and isinstance(fit[k], bool):
                return fit[k]
    if isinstance(fit, bool):
        return fit
    return None


def entry_from_report(report: dict, created: str | None = None) -> dict:
    parent = report.get("parent") or {}
    target = report.get("target") or {}
    art = report.get("artifact") or {}
    return {
        "name": report.get("build"),
        "parent_id": parent.get("id"),
        "parent_digest": parent.get("digest"),
        "parent_build": parent.get("build"),
        "method": target.get("method"),
        "hardware": target.get("hardware"),
        "probes": target.get("probes"),
        "format": art.get("format"),
        "bytes": art.get("bytes"),
        "bpw": art.get("bpw"),
        "headline_retention": headline_retention(report),
        "kld_mean": _get(report, "metrics", "fidelity", "kld_mean"),
        "status": report.get("status"),
        "created": created if created is not None else (
            report.get("created") or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()),
        "fits": _fits(report),
    }


def write_entry(build_dir: str | os.PathLike, report: dict) -> dict:
    """Build entry.json from a report and write it (atomically) into build_dir.

    entry.json is one of the signed files, so write it before signing. An
    existing entry's ``created`` time is kept so rewriting is stable."""
    root = Path(build_dir)
    created = None
    old = root / ENTRY_NAME
    if old.is_file():
        try:
            created = json.loads(old.read_text(encoding="utf-8")).get("created")
        except (ValueError, AttributeError):
            created = None
    entry = entry_from_report(report, created)
    write_json(old, entry)
    return entry


def load_entries(builds: str | os.PathLike) -> list[dict]:
    """Entries of every build folder (entry.json, else derived from report.json).
    Each gets a private ``_dir`` key with its folder."""
    root = Path(builds)
    if not root.is_dir():
        raise SlimError(f"builds folder {root} not found")
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        entry = None
        try:
            if (d / ENTRY_NAME).is_file():
                entry = json.loads((d / ENTRY_NAME).read_text(encoding="utf-8"))
            elif (d / "report.json").is_file():
                entry = entry_from_report(json.loads((d / "report.json").read_text(encoding="utf-8")),
                                          created=_mtime_iso(d / "report.json"))
        except (OSError, ValueError) as e:
            print(f"warning: skipping {d}: unreadable entry ({e})", file=sys.stderr)
            continue
        if not isinstance(entry, dict):
            continue
        entry = dict(entry)
        entry.setdefault("name", d.name)
        entry["name"] = entry.get("name") or d.name
        entry["_dir"] = str(d)
        out.append(entry)
    return out


def _mtime_iso(p: Path) -> str:
    t = _dt.datetime.fromtimestamp(p.stat().st_mtime, _dt.timezone.utc).replace(microsecond=0)
    return t.isoformat()


def _find(entries: list[dict], name: str) -> dict:
    for e in entries:
        if e["name"] == name or Path(e["_dir"]).name == name:
            return e
    raise SlimError(f"no build named {name!r} (see: python -m slim.registry ls)")


# ---------------------------------------------------------------- formatting

def _fmt_size(b) -> str:
    return fmt_bytes(b) if isinstance(b, (int, float)) else "-"


def _fmt(v, spec: str) -> str:
    return format(v, spec) if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"


def _fmt_fits(v) -> str:
    return "yes" if v is True else "no" if v is False else "-"


def _table(rows: list[list[str]], header: list[str], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def _parent_key(e: dict, by_name: dict) -> tuple[str, str]:
    """Group builds by their root source model (following parent_build links)."""
    seen = set()
    cur = e
    while cur.get("parent_build") and cur["parent_build"] in by_name and cur["name"] not in seen:
        seen.add(cur["name"])
        cur = by_name[cur["parent_build"]]
    return (str(cur.get("parent_id")), str(cur.get("parent_digest")))


def _short_digest(d: str | None) -> str:
    if not d or d == "None":
        return "?"
    return d.split(":", 1)[-1][:12]


def signature_states(entries: list[dict], trusted) -> dict[str, str]:
    from slim.verify import signature_state
    out = {}
    for e in entries:
        state, _why = signature_state(e["_dir"], trusted)
        out[e["name"]] = state
    return out


def format_ls(entries: list[dict], sig_states: dict[str, str] | None = None) -> str:
    if not entries:
        return "no builds"
    by_name = {e["name"]: e for e in entries}
    groups: dict[tuple[str, str], list[dict]] = {}
    for e in entries:
        groups.setdefault(_parent_key(e, by_name), []).append(e)
    header = ["name", "method", "hardware", "size", "bpw", "retention", "KLD", "fits", "status", "signature"]
    lines: list[str] = []
    for (pid, pdig), es in sorted(groups.items()):
        lines.append(f"parent {pid} (sha256 {_short_digest(pdig)}): {len(es)} build(s)")
        es = sorted(es, key=lambda x: (-(x.get("bytes") or 0), x["name"]))
        rows = []
        for e in es:
            name = e["name"] + (f" <- {e['parent_build']}" if e.get("parent_build") else "")
            rows.append([name, str(e.get("method") or "-"), str(e.get("hardware") or "-"),
                         _fmt_size(e.get("bytes")), _fmt(e.get("bpw"), ".2f"),
                         _fmt(e.get("headline_retention"), ".3f"), _fmt(e.get("kld_mean"), ".4f"),
                         _fmt_fits(e.get("fits")), str(e.get("status") or "-"),
                         (sig_states or {}).get(e["name"], "?")])
        lines += _table(rows, header)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def format_show(entry: dict, report: dict | None, sig: tuple[str, str] | None = None) -> str:
    lines = [f"build {entry['name']}  ({entry['_dir']})"]
    for k in ENTRY_FIELDS:
        if k != "name":
            lines.append(f"  {k:<19} {json.dumps(entry.get(k))}")
    if sig:
        lines.append(f"  {'signature':<19} {sig[0]}" + (f"  ({sig[1]})" if sig[1] else ""))
    if report:
        fid = _get(report, "metrics", "fidelity", default={}) or {}
        lines.append("headline:")
        lines.append(f"  status {report.get('status')}"
                     + (f"; failed gates: {', '.join(failed_gates(report))}"
                        if failed_gates(report) else ""))
        lines.append(f"  size {_fmt_size(entry.get('bytes'))}, {_fmt(entry.get('bpw'), '.2f')} bpw, "
                     f"format {entry.get('format')}")
        lines.append(f"  ppl {_fmt(fid.get('ppl_parent'), '.3f')} -> {_fmt(fid.get('ppl_child'), '.3f')} "
                     f"(ratio {_fmt(fid.get('ppl_ratio'), '.4f')}), KLD mean {_fmt(fid.get('kld_mean'), '.4f')}, "
                     f"top-1 agreement {_fmt(fid.get('top1_agreement'), '.3f')}")
        cats = _get(report, "metrics", "probes", "categories", default={}) or {}
        if cats:
            lines.append("  retention by probe category:")
            w = max(len(c) for c in cats)
            for c in sorted(cats):
                v = cats[c] if isinstance(cats[c], dict) else {}
                lines.append(f"    {c:<{w}}  {_fmt(v.get('retention'), '.3f')}  "
                             f"(parent {_fmt(v.get('parent_score'), '.3f')}, child {_fmt(v.get('child_score'), '.3f')}, "
                             f"n={v.get('n', '-')})")
    return "\n".join(lines) + "\n"


def format_lineage(entries: list[dict], name: str) -> str:
    """Tree from the root source model through intermediate builds to children.
    The named build is marked with '*', its ancestors with '+'."""
    by_name = {e["name"]: e for e in entries}
    target = _find(entries, name)
    chain = [target["name"]]          # target, parent build, grandparent build, ...
    cur = target
    while cur.get("parent_build") and cur["parent_build"] not in chain:
        chain.append(cur["parent_build"])
        if cur["parent_build"] not in by_name:
            break
        cur = by_name[cur["parent_build"]]
    top = chain[-1]
    top_entry = by_name.get(top)
    ref = top_entry if top_entry is not None else cur
    root_key = (str(ref.get("parent_id")), str(ref.get("parent_digest")))

    children: dict[str | None, list[dict]] = {}
    for e in entries:
        pb = e.get("parent_build")
        if pb:
            children.setdefault(pb, []).append(e)
        elif (str(e.get("parent_id")), str(e.get("parent_digest"))) == root_key:
            children.setdefault(None, []).append(e)

    def label(e: dict) -> str:
        mark = "* " if e["name"] == target["name"] else "+ " if e["name"] in chain else ""
        return (f"{mark}{e['name']}  [{e.get('method') or '-'}, {e.get('hardware') or '-'}, "
                f"{_fmt_size(e.get('bytes'))}, {_fmt(e.get('bpw'), '.2f')} bpw, "
                f"retention {_fmt(e.get('headline_retention'), '.3f')}, {e.get('status') or '-'}]")

    lines = [f"{root_key[0]} (sha256 {_short_digest(root_key[1])})"]

    def walk(key, prefix: str, seen: frozenset):
        kids = sorted(children.get(key, []), key=lambda x: x["name"])
        for i, e in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(prefix + ("└── " if last else "├── ") + label(e))
            if e["name"] not in seen:
                walk(e["name"], prefix + ("    " if last else "│   "), seen | {e["name"]})

    if top_entry is None:  # the chain reaches a parent build that is not in this registry
        lines.append(f"└── + {top}  [not in this registry]")
        walk(top, "    ", frozenset({top}))
    else:
        walk(None, "", frozenset())
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m slim.registry", description="List builds and their lineage.")
    ap.add_argument("--builds", default="builds", help="builds folder (default ./builds)")
    ap.add_argument("--key", action="append", default=[], metavar="PUB", help="trusted public key file (repeatable)")
    ap.add_argument("--key-dir", default=None, help="key dir for trusted keys (default $SLIM_KEY_DIR or ~/.config/slim/keys)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ls", help="variants of each parent: size, retention, fit, signature state")
    s = sub.add_parser("show", help="one build's entry and report headline")
    s.add_argument("name")
    lg = sub.add_parser("lineage", help="tree from the source model to the build's children")
    lg.add_argument("name")
    args = ap.parse_args(argv)
    try:
        entries = load_entries(args.builds)
        if args.cmd in ("ls", "show"):
            from slim.signing.keys import load_trusted_keys
            trusted = load_trusted_keys(args.key, args.key_dir)
        if args.cmd == "ls":
            sys.stdout.write(format_ls(entries, signature_states(entries, trusted)))
        elif args.cmd == "show":
            from slim.verify import signature_state
            e = _find(entries, args.name)
            rp = Path(e["_dir"]) / "report.json"
            report = json.loads(rp.read_text(encoding="utf-8")) if rp.is_file() else None
            sys.stdout.write(format_show(e, report, signature_state(e["_dir"], trusted)))
        elif args.cmd == "lineage":
            sys.stdout.write(format_lineage(entries, args.name))
    except SlimError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
