"""File and tree digests, memoised by (device, inode, size, mtime_ns) like DVC.

A no-op rebuild must not re-read a multi-GB model just to learn it did not change.

Where the memo lives, and why (issue 21): **one memo per host, on that host, never inside
the shared cache.** It used to be ``digests.sqlite`` in WAL mode in the cache root. When
the cache is on NFS/Lustre/GPFS shared by nodes that was wrong twice over:

* SQLite's WAL needs shared memory between the processes using the database; SQLite
  documents WAL as unsupported on network filesystems (the ``-shm`` file is not coherent
  across hosts), so two nodes could corrupt it or read stale rows;
* the key ``(st_dev, st_ino)`` only means something on one host: node A's local
  ``/scratch`` and node B's local ``/scratch`` can both have device 2049 inode 1234 with
  the same size and mtime, and a shared memo would hand B the digest of A's file -- a
  wrong input digest, hence a wrong cache key.

So the memo is ``digests-<host id>.sqlite`` under ``$SLIM_MEMO_DIR`` (default
``$XDG_CACHE_HOME/slim-memo``, i.e. ``~/.cache/slim-memo``; point it at local disk, e.g.
``/var/tmp/slim-memo``, where home directories are on NFS), in SQLite's default
rollback-journal mode (``journal_mode=DELETE``), which needs only the POSIX ``fcntl``
locks that SQLite documents as working on NFS with a lock manager -- so even a memo that
lands in an NFS home is used by one host only and locked correctly.
``SLIM_MEMO_DIR=none`` turns the memo off (every digest is computed).

The memo is only a shortcut: if it cannot be opened or written (locked past the timeout,
read-only, full disk) the digest is computed from the file and the build goes on.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import sqlite3
import sys
import threading
from pathlib import Path

import xxhash



def memo_path() -> Path | None:
    """This host's memo file (None: memo turned off)."""
    env = os.environ.get("SLIM_MEMO_DIR")
    if env and env.lower() in ("none", "off", "0"):
        return None
    if env:
        base = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "slim-memo"
    host = os.environ.get("SLIM_HOST_ID") or socket.gethostname()
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in host)
    return base / f"digests-{safe}.sqlite"


def file_digest(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, xxhash.xxh3_128).hexdigest()


def iter_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


class DigestMemo:
    def __init__(self, db_path: str | Path | None):
        self._lock = threading.Lock()
        self._db = None
        self.path = Path(db_path) if db_path is not None else None
        if db_path is None:
            return
        try:
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            # several processes creating a fresh memo at once: serialise the set-up
            with open(f"{db_path}.init-lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self._db = sqlite3.connect(str(db_path), timeout=30, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=DELETE")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS digests (dev INTEGER, ino INTEGER, size INTEGER,"
                    " mtime_ns INTEGER, digest TEXT, PRIMARY KEY (dev, ino))")
                self._db.commit()
        except (OSError, sqlite3.Error) as e:
            self._disable(e)

    def _disable(self, e: Exception) -> None:
        print(f"slim: warning: digest memo {self.path} unusable ({e}); hashing files "
              f"without it", file=sys.stderr)
        try:
            if self._db is not None:
                self._db.close()
        except sqlite3.Error:
            pass
        self._db = None

    def digest(self, path: str | Path) -> str:
        st = os.stat(path)
        if self._db is not None:
            try:
                with self._lock:
                    row = self._db.execute(
                        "SELECT size, mtime_ns, digest FROM digests WHERE dev=? AND ino=?",
                        (st.st_dev, st.st_ino)).fetchone()
            except sqlite3.Error as e:
                self._disable(e)
                row = None
            if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
                return row[2]
        d = file_digest(path)
        if self._db is not None:
            try:
                with self._lock:
                    self._db.execute("INSERT OR REPLACE INTO digests VALUES (?,?,?,?,?)",
                                     (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, d))
                    self._db.commit()
            except sqlite3.Error as e:
                self._disable(e)
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
