"""Staging folders under ``builds/.staging/`` that stay correct when builds/ is shared by hosts.

A build is assembled in ``.staging/<name>-<host>-<pid>/`` and renamed into place. A build
killed with -9 (or its node lost) leaves that folder behind, and the next build cleans it
up. The pid alone cannot say whether a folder is dead once builds/ is on NFS/Lustre and
SLURM nodes share it: pid 4242 on node A says nothing about node B. So every staging folder
has a lease file beside it (``<folder>.lease``, outside the folder, so it is never
published or signed) holding the owner's host id, boot id, pid and process start time, and
the running build refreshes it (rewrites it, which also bumps its mtime) every
``lease_s / 4`` seconds from a heartbeat thread.

A folder is reclaimed only when it is provably dead:

* same host (same host id and boot id): the pid is gone, or it now belongs to another
  process (start time differs) -- reclaimed at once;
* another host, or this host after a reboot: the lease has not been refreshed for
  ``lease_s`` (default 600 s, ``SLIM_STAGING_LEASE_S``), judged by the lease file's mtime
  against this host's clock (so hosts' clocks must agree to well within the lease, as NTP
  keeps them) -- reclaimed, saying so on the console; a live lease is left alone however
  old the folder is;
* no lease (an older slim, or a process killed between mkdir and lease write): treated as
  another host's, by the folder's own mtime.

Reclaiming renames the folder into ``.staging/.reclaim-*`` first (atomic), so two hosts
that decide at once do not delete each other's work twice or half.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

from slim.fileio import atomic_write_text, canonical_json

LEASE_SUFFIX = ".lease"
DEFAULT_LEASE_S = 600.0


def lease_seconds() -> float:
    try:
        return float(os.environ.get("SLIM_STAGING_LEASE_S", DEFAULT_LEASE_S))
    except ValueError:
        return DEFAULT_LEASE_S


def host_id() -> str:
    """This host's name (``SLIM_HOST_ID`` overrides it: tests, or hosts sharing a name)."""
    return os.environ.get("SLIM_HOST_ID") or socket.gethostname()


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/pid/stat); None if
    the process does not exist. Distinguishes a reused pid from the original process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""  # alive, start time unknown (no /proc)
    return stat.rsplit(")", 1)[1].split()[19]


def _safe(s: str) -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in s)[:40]


class StagingLease:
    """A staging folder owned by this process, with its heartbeat. Use as a context manager
    or call :meth:`release`."""

    def __init__(self, staging_root: Path, name: str, lease_s: float | None = None):
        self.root = Path(staging_root)
        self.lease_s = lease_s or lease_seconds()
        self.host, self.pid = host_id(), os.getpid()
        self.path = self.root / f"{name}-{_safe(self.host)}-{self.pid}"
        self.lease_file = self.path.with_name(self.path.name + LEASE_SUFFIX)
        self._record = {"host": self.host, "boot_id": boot_id(), "pid": self.pid,
                        "start": process_start(self.pid), "name": name,
                        "lease_s": self.lease_s, "created": time.time()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def claim(cls, staging_root: Path, name: str, lease_s: float | None = None,
              echo=None) -> "StagingLease":
        """Reclaim dead folders, then create a fresh staging folder with a live lease."""
        lease = cls(staging_root, name, lease_s)
        reclaim_stale(lease.root, echo=echo)
        lease.root.mkdir(parents=True, exist_ok=True)
        lease._write()  # the lease exists before the folder: nobody sees a lease-less one
        shutil.rmtree(lease.path, ignore_errors=True)
        lease.path.mkdir(parents=True)
        lease._thread = threading.Thread(target=lease._beat, daemon=True,
                                         name="slim-staging-heartbeat")
        lease._thread.start()
        return lease

    def _write(self) -> None:
        text = canonical_json(dict(self._record, heartbeat=time.time()))
        try:
            atomic_write_text(self.lease_file, text)
        except FileNotFoundError:  # another build removed the empty .staging/ just now
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.lease_file, text)

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                self._write()
            except OSError:
                pass  # a full or flaky disk: the build itself will report it

    def release(self) -> None:
        """Stop the heartbeat and remove the lease (the folder is published or removed by
        the caller)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.path.exists():
            return  # not published nor removed: keep the lease, so the folder is judged by it
        try:
            self.lease_file.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "StagingLease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def read_lease(lease_file: Path) -> dict | None:
    try:
        return json.loads(lease_file.read_text())
    except (OSError, ValueError):
        return None


def _age(p: Path, now: float) -> float | None:
    try:
        return now - p.stat().st_mtime
    except FileNotFoundError:
        return None


def why_dead(folder: Path, lease_s: float | None = None, now: float | None = None) -> str | None:
    """Why ``folder`` (a staging folder) is dead and may be removed; None while it may be
    live. Only folders created by :class:`StagingLease`, or left by a publish, are judged."""
    lease_s = lease_s or lease_seconds()
    now = time.time() if now is None else now
    lease_file = folder.with_name(folder.name + LEASE_SUFFIX)
    rec = read_lease(lease_file)
    if rec is None:
        # no lease: a publish's leftover ``old-<name>-<hex>``, an older slim's folder, or a
        # lease lost some other way; a name ending in this host's id and a dead pid is ours
        head, _, pid = folder.name.rpartition("-")
        if pid.isdigit() and head.endswith(f"-{_safe(host_id())}") \
                and process_start(int(pid)) is None:
            return f"pid {pid} on this host has exited (no lease)"
        age = _age(lease_file, now) if lease_file.exists() else _age(folder, now)
        if age is not None and age > lease_s:
            return f"no live lease, untouched for {age:.0f} s (> lease {lease_s:.0f} s)"
        return None
    same_host = rec.get("host") == host_id() and rec.get("boot_id", "") == boot_id()
    if same_host:
        pid = int(rec.get("pid", -1))
        start = process_start(pid)
        if start is None:
            return f"pid {pid} on this host has exited"
        if rec.get("start") and start and start != rec["start"]:
            return f"pid {pid} on this host has exited (the pid now belongs to another process)"
        return None
    age = _age(lease_file, now)
    limit = float(rec.get("lease_s") or lease_s)
    if age is not None and age > limit:
        where = rec.get("host") if rec.get("host") != host_id() else "this host before a reboot"
        return (f"lease of {where} pid {rec.get('pid')} expired "
                f"{age - limit:.0f} s ago (not refreshed for {age:.0f} s, lease {limit:.0f} s)")
    return None


def reclaim_stale(staging_root: Path, lease_s: float | None = None, echo=None) -> list[Path]:
    """Remove every dead staging folder (and its lease) under ``staging_root``; say so for
    those of another host. Returns the folders removed."""
    say = echo or (lambda m: print(m, file=sys.stderr))
    staging_root = Path(staging_root)
    if not staging_root.is_dir():
        return []
    now = time.time()
    removed = []
    for d in sorted(staging_root.iterdir()):
        if d.name.startswith(".reclaim-"):  # a reclaim interrupted mid-delete
            shutil.rmtree(d, ignore_errors=True)
            continue
        if d.name.startswith(".") or d.name.endswith(LEASE_SUFFIX) or not d.is_dir():
            continue
        why = why_dead(d, lease_s, now)
        if why is None:
            continue
        graveyard = staging_root / f".reclaim-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(d, graveyard)
        except OSError:
            continue  # another process reclaimed it first
        say(f"slim: reclaiming staging folder {d} ({why})")
        shutil.rmtree(graveyard, ignore_errors=True)
        try:
            d.with_name(d.name + LEASE_SUFFIX).unlink()
        except FileNotFoundError:
            pass
        removed.append(d)
    # leases whose folder is gone (owner died between lease write and mkdir, or a reclaim)
    for lf in staging_root.glob(f"*{LEASE_SUFFIX}"):
        folder = lf.with_name(lf.name[:-len(LEASE_SUFFIX)])
        if not folder.exists() and why_dead(folder, lease_s, now) is not None:
            try:
                lf.unlink()
            except FileNotFoundError:
                pass
    return removed
