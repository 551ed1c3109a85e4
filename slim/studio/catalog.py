"""What exists under a builds folder, as the studio pages need it: parents and their variants,
one build's report and files, sweeps.

Builds are read with the registry's own functions (``slim.registry``); signature states and
verify results are cached per build by the size and mtime of every file in it, so a page
load re-hashes nothing that has not changed and a file flipped in place is seen at once.
"""
from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Callable

from slim.errors import SlimError
from slim.registry import _parent_key, load_entries
from slim.report.headline import headline_retention

SWEEPS_DIR = "_sweeps"


def stat_signature(folder: Path) -> tuple:
    """(relative path, size, mtime_ns) of every file under ``folder``: changes when any
    file is added, removed, resized or rewritten."""
    out = []
    for p in sorted(folder.rglob("*")):
        try:
            if p.is_file():
                st = p.stat()
                out.append((str(p.relative_to(folder)), st.st_size, st.st_mtime_ns))
        except OSError:
            continue
    return tuple(out)


class StatCache:
    """Memoise ``fn(folder)`` until the folder's :func:`stat_signature` changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._memo: dict[tuple[str, str], tuple[tuple, Any]] = {}

    def get(self, kind: str, folder: Path, fn: Callable[[Path], Any]) -> Any:
        sig = stat_signature(folder)
        key = (kind, str(folder))
        with self._lock:
            hit = self._memo.get(key)
        if hit is not None and hit[0] == sig:
            return hit[1]
        value = fn(folder)
        with self._lock:
            self._memo[key] = (sig, value)
        return value


def parent_slug(pid: str, pdig: str) -> str:
    """A short URL-safe id of a parent (id + digest)."""
    return hashlib.sha256(f"{pid}|{pdig}".encode()).hexdigest()[:12]


def read_report(build_dir: Path) -> dict | None:
    p = build_dir / "report.json"
    try:
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
    except (OSError, ValueError):
        return None


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class Catalog:
    """The builds folder seen by the studio. ``trusted``: public keys by id for verify."""

    def __init__(self, builds: Path, trusted: dict | None) -> None:
        self.builds = Path(builds)
        self.trusted = trusted or {}
        self.cache = StatCache()

    # ------------------------------------------------------------ builds
    def entries(self) -> list[dict]:
        if not self.builds.is_dir():
            return []
        return [e for e in load_entries(self.builds) if not Path(e["_dir"]).name.startswith(("_", "."))]

    def build_dir(self, name: str) -> Path:
        """The folder of build ``name``; a name is one plain folder name, never a path."""
        if not name or "/" in name or "\\" in name or name.startswith((".", "_")):
            raise SlimError(f"no build named {name!r}")
        d = self.builds / name
        if not (d / "report.json").is_file():
            raise SlimError(f"no build named {name!r} in {self.builds}")
        return d

    def signature(self, build_dir: Path) -> tuple[str, str]:
        from slim.verify import signature_state
        return self.cache.get("sig", build_dir, lambda d: signature_state(d, self.trusted))

    def verify(self, build_dir: Path) -> list[tuple[str, str, str]]:
        """Every check of ``python -m slim.verify`` (parent link included)."""
        from slim.verify import verify_build

        def run(d: Path):
            try:
                return verify_build(d, self.trusted, check_parent=True)
            except SlimError as e:
                return [("FAIL", "build folder", str(e))]
        return self.cache.get("verify", build_dir, run)

    def tier_fits(self, build_dir: Path, report: dict) -> list[dict]:
        from slim.studio.numbers import tier_fits
        return self.cache.get("fits", build_dir, lambda d: tier_fits(d, report))

    # ------------------------------------------------------------ parents
    def parents(self) -> list[dict]:
        """Parents (root source models) with their variants, newest build order kept."""
        entries = self.entries()
        by_name = {e["name"]: e for e in entries}
        groups: dict[tuple[str, str], list[dict]] = {}
        for e in entries:
            groups.setdefault(_parent_key(e, by_name), []).append(e)
        out = []
        for (pid, pdig), es in sorted(groups.items()):
            out.append({"id": pid, "digest": pdig, "slug": parent_slug(pid, pdig),
                        "entries": es, "n": len(es)})
        return out

    def parent(self, slug: str) -> dict:
        return _one(self.parents(), "slug", slug, f"no parent {slug!r} in {self.builds}")

    def variant_row(self, entry: dict) -> dict:
        """One row of a parent's table, every number from the build's report.json."""
        from slim.studio.numbers import headline_interval
        d = Path(entry["_dir"])
        r = read_report(d) or {}
        art = r.get("artifact") or {}
        fid = (r.get("metrics") or {}).get("fidelity") or {}
        ratio = _num((art.get("size_vs_parent") or {}).get("ratio"))
        sig, sig_why = self.signature(d)
        head = headline_retention(r) if r else entry.get("headline_retention")
        return {
            "name": entry["name"], "dir": str(d), "parent_build": entry.get("parent_build"),
            "method": (r.get("target") or {}).get("method") or entry.get("method"),
            "hardware": (r.get("target") or {}).get("hardware") or entry.get("hardware"),
            "probes": (r.get("target") or {}).get("probes") or entry.get("probes"),
            "format": art.get("format"),
            "bytes": _num(art.get("bytes")),
            "size_pct": 100 * ratio if ratio is not None else None,
            "bpw": _num(art.get("bpw")),
            "kld": _num(fid.get("kld_mean")),
            "kld_stderr": _num(fid.get("kld_mean_stderr")),
            "headline": head,
            "headline_interval": headline_interval(r) if r else None,
            "status": r.get("status") or entry.get("status"),
            "fits": (r.get("fit") or {}).get("fits") if isinstance((r.get("fit") or {}).get("fits"), bool) else None,
            "tiers": self.tier_fits(d, r) if r else [],
            "signature": sig, "signature_detail": sig_why,
            "created": r.get("created") or entry.get("created"),
        }

    # ------------------------------------------------------------ files
    def build_file(self, name: str, rel: str) -> Path:
        """A file inside build ``name`` (download links); nothing outside it."""
        d = self.build_dir(name).resolve()
        p = (d / rel).resolve()
        if not p.is_relative_to(d) or not p.is_file():
            raise SlimError(f"no file {rel!r} in build {name!r}")
        return p

    # ------------------------------------------------------------ sweeps
    def sweeps(self) -> list[dict]:
        """Sweep folders (``builds/_sweeps/<time>/``) that have a summary.json, newest first."""
        root = self.builds / SWEEPS_DIR
        out = []
        if root.is_dir():
            for d in sorted(root.iterdir(), reverse=True):
                s = d / "summary.json"
                if d.is_dir() and s.is_file():
                    try:
                        summ = json.loads(s.read_text(encoding="utf-8"))
                    except (OSError, ValueError):
                        continue
                    out.append({"id": d.name, "dir": d, "summary": summ})
        return out

    def sweep(self, sweep_id: str) -> dict:
        return _one(self.sweeps(), "id", sweep_id,
                    f"no sweep {sweep_id!r} in {self.builds / SWEEPS_DIR}")


def _one(rows: list[dict], key: str, value: str, missing: str) -> dict:
    """The row whose *key* is *value*, or a SlimError saying *missing*."""
    for r in rows:
        if r[key] == value:
            return r
    raise SlimError(missing)
