"""Two "hosts" (processes with different SLIM_HOST_ID) sharing one builds/.staging/: a dead
host's folder is reclaimed only after its lease expires (and says so), a live one is never
touched, a dead pid on the same host is reclaimed at once."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from slim.staging import LEASE_SUFFIX, StagingLease, reclaim_stale, why_dead
from tests.conftest import ROOT

HOLD = """
import sys, time
from pathlib import Path
from slim.staging import StagingLease
lease = StagingLease.claim(Path(sys.argv[1]), sys.argv[2])
(lease.path / "model.gguf").write_bytes(b"x" * 1000)
print(lease.path, flush=True)
time.sleep(float(sys.argv[3]))
"""


def _hold(root: Path, name: str, host: str, lease_s: float, seconds: float):
    env = dict(os.environ, SLIM_HOST_ID=host, SLIM_STAGING_LEASE_S=str(lease_s))
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(root), name, str(seconds)],
                         env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    folder = Path(p.stdout.readline().strip())
    assert folder.is_dir(), folder
    return p, folder


def _reclaim_as(root: Path, host: str, lease_s: float) -> subprocess.CompletedProcess:
    code = ("import sys; from pathlib import Path; from slim.staging import reclaim_stale; "
            "print([p.name for p in reclaim_stale(Path(sys.argv[1]))])")
    env = dict(os.environ, SLIM_HOST_ID=host, SLIM_STAGING_LEASE_S=str(lease_s))
    return subprocess.run([sys.executable, "-c", code, str(root)], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True)


def test_dead_host_reclaimed_after_lease_live_host_left_alone(tmp_path):
    root = tmp_path / "builds" / ".staging"
    lease = 2.0
    live, live_dir = _hold(root, "m-q4-live", "nodeA", lease, 30)
    dead, dead_dir = _hold(root, "m-q8-dead", "nodeA", lease, 30)
    try:
        assert "nodeA" in live_dir.name and live_dir.name != dead_dir.name
        dead.send_signal(signal.SIGKILL)  # node A's build dies: no release, no cleanup
        dead.wait()
        # node B cannot see node A's pids: within the lease, both folders stay
        r = _reclaim_as(root, "nodeB", lease)
        assert r.stdout.strip() == "[]" and live_dir.is_dir() and dead_dir.is_dir()
        time.sleep(lease + 1.5)
        r = _reclaim_as(root, "nodeB", lease)
        assert r.stdout.strip() == f"[{dead_dir.name!r}]", r
        assert f"reclaiming staging folder {dead_dir}" in r.stderr
        assert "lease of nodeA pid" in r.stderr and "expired" in r.stderr
        assert not dead_dir.exists() and not Path(str(dead_dir) + LEASE_SUFFIX).exists()
        # the live one kept its heartbeat: older than the lease, still untouched
        assert live_dir.is_dir() and (live_dir / "model.gguf").stat().st_size == 1000
        assert why_dead(live_dir, lease) is None
        assert json.loads(Path(str(live_dir) + LEASE_SUFFIX).read_text())["host"] == "nodeA"
    finally:
        live.kill()
        live.wait()


def test_same_host_dead_pid_reclaimed_at_once(tmp_path, monkeypatch):
    root = tmp_path / ".staging"
    p, folder = _hold(root, "b", "nodeB", 600, 30)
    p.send_signal(signal.SIGKILL)
    p.wait()
    r = _reclaim_as(root, "nodeB", 600)
    assert r.stdout.strip() == f"[{folder.name!r}]"
    assert "pid" in r.stderr and "has exited" in r.stderr
    # but for node C the same folder is someone else's, within a 600 s lease: kept
    p, folder = _hold(root, "b", "nodeB", 600, 30)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert _reclaim_as(root, "nodeC", 600).stdout.strip() == "[]" and folder.is_dir()


def test_own_lease_released_and_folder_not_reclaimed_while_held(tmp_path, monkeypatch):
    monkeypatch.setenv("SLIM_HOST_ID", "nodeZ")
    root = tmp_path / ".staging"
    with StagingLease.claim(root, "x", lease_s=0.4) as lease:
        time.sleep(1.0)  # > lease: the heartbeat keeps it fresh
        monkeypatch.setenv("SLIM_HOST_ID", "nodeY")
        assert reclaim_stale(root, lease_s=0.4) == [] and lease.path.is_dir()
        lease.path.rename(tmp_path / "published")
    assert not lease.lease_file.exists()
    # a folder neither published nor removed keeps its lease; once the pid is gone, its
    # own host reclaims it even without a lease
    monkeypatch.setenv("SLIM_HOST_ID", "nodeZ")
    with StagingLease.claim(root, "y", lease_s=600) as kept:
        pass
    assert kept.path.is_dir() and kept.lease_file.exists()
    kept.lease_file.unlink()
    dead = kept.path.with_name(kept.path.name.rsplit("-", 1)[0] + "-999999999")
    kept.path.rename(dead)
    assert reclaim_stale(root, lease_s=600) == [dead]
