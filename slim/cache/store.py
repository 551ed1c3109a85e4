"""The object store: ``objects/<k[:2]>/<k>/{manifest.json,data/}``.

An entry is computed in ``tmp/`` and published with one ``rename``; a per-key
file lock makes concurrent builds compute a key once. A process killed mid-step
leaves only a ``tmp/`` directory, never a visible entry.

Across hosts (a cache on NFS/Lustre shared by SLURM nodes) the per-key lock is ``flock``,
which Linux NFS clients carry as NFS byte-range locks: a live holder on another host is
never overridden (filelock only waits), and the server drops the lock of a dead client when
its lease expires. Nothing here removes a lock or a ``tmp/`` directory whose key lock is
held, whatever its age; the holder's host and pid are written beside the lock
(``locks/<key>.holder``) so a waiting build can say whom it waits for.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout

from slim.cache.digest import DigestMemo, file_digest, iter_files, memo_path
from slim.staging import host_id
from slim.fileio import canonical_json

MANIFEST = "manifest.json"


def default_cache_dir() -> Path:
    env = os.environ.get("SLIM_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "slim").resolve()


@dataclass
class Entry:
    key: str
    path: Path

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def manifest(self) -> dict:
        return json.loads((self.path / MANIFEST).read_text())


class ObjectStore:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser().resolve() if root else default_cache_dir()
        for sub in ("objects", "tmp", "locks", "trash"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # per host, outside the (possibly shared) cache: see slim/cache/digest.py
        self.memo = DigestMemo(memo_path())

    # -- layout -------------------------------------------------------------
    def entry_path(self, key: str) -> Path:
        return self.root / "objects" / key[:2] / key

    def get(self, key: str) -> Entry | None:
        p = self.entry_path(key)
        if (p / MANIFEST).is_file():
            return Entry(key, p)
        return None

    def entries(self) -> list[Entry]:
        out = []
        for shard in sorted((self.root / "objects").iterdir()):
            if shard.is_dir():
                for p in sorted(shard.iterdir()):
                    if (p / MANIFEST).is_file():
                        out.append(Entry(p.name, p))
        return out

    def lock(self, key: str) -> FileLock:
        return FileLock(str(self.root / "locks" / f"{key}.lock"))

    def lock_held(self, key: str) -> bool:
        """Whether some process (on any host whose locks reach this filesystem) holds the
        key's lock right now."""
        lk = self.lock(key)
        try:
            lk.acquire(timeout=0)
        except Timeout:
            return True
        lk.release()
        return False

    def holder(self, key: str) -> dict | None:
        try:
            return json.loads((self.root / "locks" / f"{key}.holder").read_text())
        except (OSError, ValueError):
            return None

    def _acquire(self, key: str, emit) -> FileLock:
        lk = self.lock(key)
        try:
            lk.acquire(timeout=0)
        except Timeout:
            emit("waiting_for_lock", {"key": key, "holder": self.holder(key)})
            lk.acquire()
        try:
            (self.root / "locks" / f"{key}.holder").write_text(json.dumps(
                {"host": host_id(), "pid": os.getpid(), "since": time.time()}))
        except OSError:
            pass  # informational only
        return lk

    # -- integrity ----------------------------------------------------------
    def verify(self, entry: Entry) -> list[str]:
        """Problems with an entry's files (empty list: intact)."""
        problems = []
        try:
            files = entry.manifest["files"]
        except (OSError, ValueError, KeyError) as e:
            return [f"{MANIFEST} unreadable: {e}"]
        present = {p.relative_to(entry.data).as_posix() for p in iter_files(entry.data)} \
            if entry.data.is_dir() else set()
        for rel, info in sorted(files.items()):
            p = entry.data / rel
            if rel not in present:
                problems.append(f"{rel}: missing")
            elif p.stat().st_size != info["size"]:
                problems.append(f"{rel}: size {p.stat().st_size} != {info['size']}")
            elif file_digest(p) != info["xxh3"]:
                problems.append(f"{rel}: content digest mismatch")
        for rel in sorted(present - set(files)):
            problems.append(f"{rel}: not in manifest")
        return problems

    def evict(self, key: str) -> None:
        """Move an entry out of sight atomically, then delete it."""
        p = self.entry_path(key)
        if not p.exists():
            return
        dest = self.root / "trash" / f"{key}-{uuid.uuid4().hex[:8]}"
        os.rename(p, dest)
        shutil.rmtree(dest, ignore_errors=True)

    # -- compute ------------------------------------------------------------
    def get_or_compute(self, key: str, material: dict, compute: Callable[[Path], None],
                       verify: bool = False, on_event: Callable[[str, dict], None] | None = None
                       ) -> tuple[Entry, bool]:
        """Return (entry, cached). ``compute(out_dir)`` writes the step's files."""
        emit = on_event or (lambda ev, info: None)
        entry = self._valid_hit(key, verify, emit)
        if entry:
            return entry, True
        with self._acquire(key, emit):
            entry = self._valid_hit(key, verify, emit)  # another process may have finished it
            if entry:
                return entry, True
            tmp = self.root / "tmp" / f"{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            data = tmp / "data"
            data.mkdir(parents=True)
            t0 = time.time()
            try:
                compute(data)
                files = {p.relative_to(data).as_posix(): {"size": p.stat().st_size,
                                                          "xxh3": file_digest(p)}
                         for p in iter_files(data)}
                manifest = {"key": key, "material": material, "files": files,
                            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                            "seconds": round(time.time() - t0, 3)}
                (tmp / MANIFEST).write_text(canonical_json(manifest, indent=2))
                final = self.entry_path(key)
                final.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.rename(tmp, final)
                except OSError:
                    # another process published it first (a filesystem whose locks do not
                    # hold): same key, same content, so keep theirs
                    if not (final / MANIFEST).is_file():
                        raise
                    shutil.rmtree(tmp, ignore_errors=True)
                    return Entry(key, final), True
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return Entry(key, final), False

    def _valid_hit(self, key: str, verify: bool, emit) -> Entry | None:
        entry = self.get(key)
        if entry is None:
            return None
        if verify:
            problems = self.verify(entry)
            if problems:
                emit("corrupt_entry_recomputed", {"key": key, "problems": problems[:5]})
                self.evict(key)
                return None
        return entry

    # -- housekeeping -------------------------------------------------------
    def size(self, entry: Entry) -> int:
        # lstat: a link to a user's file (a 16-bit folder imported by digest) is not the cache's
        return sum(p.lstat().st_size for p in iter_files(entry.path))

    def stale_tmp(self, older_than_s: float = 3600) -> list[Path]:
        """``tmp/`` directories older than ``older_than_s`` whose key lock nobody holds: a
        long step on another host has an old ``tmp/`` directory too, and must keep it."""
        now = time.time()
        out = []
        for p in (self.root / "tmp").iterdir():
            try:
                if now - p.stat().st_mtime <= older_than_s:
                    continue
            except FileNotFoundError:
                continue
            key = self._tmp_key(p)
            if key is None or not self.lock_held(key):
                out.append(p)
        return out

    def _tmp_key(self, p: Path) -> str | None:
        """The key a ``tmp/`` directory is computing: ``<key>-<pid>-<hex>``, or a step's
        ``spec-<hex>`` folder whose spec names its output under ``tmp/<key>-...``."""
        if p.name.startswith("spec-"):
            try:
                p = Path(json.loads((p / "spec.json").read_text())["out"]).parent
            except (OSError, ValueError, KeyError):
                return None
        key = p.name.split("-", 1)[0]
        return key if len(key) == 32 and all(c in "0123456789abcdef" for c in key) else None
