"""kill -9 in the middle of a build: nothing half-written in builds/ or the cache; rerun resumes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, TINY


def test_sigkill_mid_build_leaves_nothing_partial(tmp_path):
    env = dict(os.environ, SLIM_CACHE_DIR=str(tmp_path / "cache"), SLIM_NO_PROGRESS="1")
    args = [sys.executable, "-m", "slim", *TINY, f"paths.builds={tmp_path / 'builds'}"]
    p = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    staging = tmp_path / "builds" / ".staging"
    deadline = time.time() + 300
    killed = False
    while time.time() < deadline and p.poll() is None:
        events = list(staging.glob("*/events.jsonl"))
        if events:
            evs = [json.loads(line) for line in events[0].read_text().splitlines()]
            if any(e["event"] == "started" and e["step"].startswith("convert_gguf") for e in evs):
                time.sleep(0.5)
                os.killpg(p.pid, signal.SIGKILL)
                killed = True
                break
        time.sleep(0.2)
    p.wait()
    assert killed, "build finished or stalled before the kill"
    builds = tmp_path / "builds"
    assert not [d for d in builds.iterdir() if not d.name.startswith(".")]
    from slim.cache.store import ObjectStore
    store = ObjectStore(tmp_path / "cache")
    entries = store.entries()
    assert entries, "import_parent had finished and must be cached"
    assert all(store.verify(e) == [] for e in entries)
    steps = {e.manifest["material"]["step"] for e in entries}
    assert "convert_gguf" not in steps
    # the rerun plan resumes: finished steps are cached, the killed one runs
    r = subprocess.run(args + ["plan=true"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "cached import_parent" in r.stdout and "RUN    convert_gguf" in r.stdout
