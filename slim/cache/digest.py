"""File and tree digests, memoised by (device, inode, size, mtime_ns) like DVC.

A no-op rebuild must not re-read a multi-GB model just to learn it did not change.
The memo is a small sqlite file in the cache directory; a file whose stat tuple
changed is re-hashed.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from pathlib import Path

import xxhash

CHUNK = 8 << 20


def file_digest(path: str | Path) -> str:
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while True:
            b = f.read(CHUNK)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def iter_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


class DigestMemo:
    def __init__(self, db_path: str | Path | None):
        self._lock = threading.Lock()
        self._db = None
        if db_path is not None:
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            # Switching to WAL takes an exclusive lock that sqlite answers with
            # "database is locked" at once (no busy wait) when two processes open a
            # fresh cache together, so set-up is serialised by a file lock.
            with open(f"{db_path}.init-lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self._db = sqlite3.connect(str(db_path), timeout=30, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS digests (dev INTEGER, ino INTEGER, size INTEGER,"
                    " mtime_ns INTEGER, digest TEXT, PRIMARY KEY (dev, ino))")
                self._db.commit()

    def digest(self, path: str | Path) -> str:
        st = os.stat(path)
        if self._db is not None:
            with self._lock:
                row = self._db.execute(
                    "SELECT size, mtime_ns, digest FROM digests WHERE dev=? AND ino=?",
                    (st.st_dev, st.st_ino)).fetchone()
            if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
                return row[2]
        d = file_digest(path)
        if self._db is not None:
            with self._lock:
                self._db.execute("INSERT OR REPLACE INTO digests VALUES (?,?,?,?,?)",
                                 (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, d))
                self._db.commit()
        return d

    def tree_digest(self, root: str | Path) -> str:
        """Digest of a file, or of a directory as its sorted (relpath, digest) list."""
        root = Path(root)
        if root.is_file():
            return self.digest(root)
        h = xxhash.xxh3_128()
        for p in iter_files(root):
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(self.digest(p).encode() + b"\n")
        return h.hexdigest()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
