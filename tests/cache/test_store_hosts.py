"""The cache's per-key lock across "hosts" (processes with different SLIM_HOST_ID on one
cache): a live holder is waited for, never overridden, and gc leaves its tmp/ folder alone
however old it looks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from slim.cache.store import ObjectStore
from tests.conftest import ROOT

KEY = "ab" * 16
COMPUTE = """
import json, sys, time
from pathlib import Path
from slim.cache.store import ObjectStore
store = ObjectStore(sys.argv[1])
events = []
def compute(out: Path):
    if sys.argv[2] == "fail":
        raise AssertionError("the key was computed twice")
    (out / "w.bin").write_bytes(b"w" * 100)
    Path(sys.argv[3]).write_text("computing")
    time.sleep(float(sys.argv[4]))
entry, cached = store.get_or_compute(sys.argv[5], {"step": "t"}, compute,
                                     on_event=lambda ev, info: events.append([ev, info]))
print(json.dumps({"cached": cached, "events": events}))
"""


def _run(cache, host, mode, flag, seconds):
    env = dict(os.environ, SLIM_HOST_ID=host)
    return subprocess.Popen([sys.executable, "-c", COMPUTE, str(cache), mode, str(flag),
                             str(seconds), KEY], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_other_hosts_live_lock_is_waited_for_and_its_tmp_kept(tmp_path):
    cache = tmp_path / "cache"
    ObjectStore(cache)
    a = _run(cache, "nodeA", "ok", tmp_path / "a-started", 6)
    deadline = time.time() + 60
    while not (tmp_path / "a-started").exists() and time.time() < deadline:
        time.sleep(0.1)
    store = ObjectStore(cache)
    assert store.lock_held(KEY) and store.holder(KEY)["host"] == "nodeA"
    # node A's folder looks abandoned (2 h old) but its lock is live: gc must keep it
    (live_tmp,) = list((cache / "tmp").glob(f"{KEY}-*"))
    old = time.time() - 7200
    os.utime(live_tmp, (old, old))
    orphan = cache / "tmp" / f"{'cd' * 16}-999-deadbeef"
    orphan.mkdir()
    os.utime(orphan, (old, old))
    gc = subprocess.run([sys.executable, "-m", "slim.cache", "--cache", str(cache), "gc",
                         "--builds", str(tmp_path / "nobuilds")], cwd=ROOT,
                        capture_output=True, text=True, env=dict(os.environ, SLIM_HOST_ID="nodeC"))
    assert gc.returncode == 0, gc.stderr
    assert live_tmp.is_dir() and live_tmp.name not in gc.stdout
    assert not orphan.exists() and f"stale temp {orphan.name}" in gc.stdout
    # node B wants the same key: it waits for A (and says for whom), then takes A's entry
    b = _run(cache, "nodeB", "fail", tmp_path / "b-started", 0)
    out_b, err_b = b.communicate(timeout=120)
    out_a, err_a = a.communicate(timeout=120)
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    ra, rb = json.loads(out_a), json.loads(out_b)
    assert ra["cached"] is False and rb["cached"] is True
    waits = [info for ev, info in rb["events"] if ev == "waiting_for_lock"]
    assert waits and waits[0]["holder"]["host"] == "nodeA"
    assert ObjectStore(cache).verify(ObjectStore(cache).get(KEY)) == []
    assert not ObjectStore(cache).lock_held(KEY)
