"""Object store: atomic publish under SIGKILL, one computation per key, corruption found."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from slim.cache.digest import DigestMemo
from slim.cache.store import ObjectStore, default_cache_dir

WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from slim.cache.store import ObjectStore
    root, key, counter, sleep = sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])
    def compute(out):
        with open(counter, "a") as f:
            f.write("x\\n")
        (out / "a.bin").write_bytes(b"a" * 1000)
        time.sleep(sleep)
        (out / "b.txt").write_text("done")
    entry, cached = ObjectStore(root).get_or_compute(key, {"k": key}, compute)
    print("CACHED" if cached else "COMPUTED", flush=True)
""")


def _spawn(tmp_path, key, sleep):
    return subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "cache"), key,
                             str(tmp_path / "counter"), str(sleep)],
                            stdout=subprocess.PIPE, text=True)


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SLIM_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == (tmp_path / "c").resolve()
    assert ObjectStore().root == (tmp_path / "c").resolve()


def test_publish_and_hit(tmp_path):
    store = ObjectStore(tmp_path)
    calls = []
    e, cached = store.get_or_compute("ab" * 16, {"m": 1},
                                     lambda out: (calls.append(1), (out / "f").write_text("hi")))
    assert not cached and (e.data / "f").read_text() == "hi"
    assert e.manifest["files"]["f"]["size"] == 2
    e2, cached2 = store.get_or_compute("ab" * 16, {"m": 1}, lambda out: calls.append(2))
    assert cached2 and calls == [1] and e2.path == e.path


def test_failed_compute_leaves_nothing(tmp_path):
    store = ObjectStore(tmp_path)

    def boom(out):
        (out / "partial").write_text("x")
        raise RuntimeError("fail")
    try:
        store.get_or_compute("cd" * 16, {}, boom)
    except RuntimeError:
        pass
    assert store.get("cd" * 16) is None
    assert list((tmp_path / "tmp").iterdir()) == []


def test_sigkill_mid_step_leaves_no_entry_and_rerun_completes(tmp_path):
    key = "ef" * 16
    p = _spawn(tmp_path, key, 30)
    deadline = time.time() + 60
    while not (tmp_path / "counter").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    store = ObjectStore(tmp_path / "cache")
    assert store.get(key) is None, "a killed computation must not be visible"
    p2 = _spawn(tmp_path, key, 0)
    out, _ = p2.communicate(timeout=60)
    assert "COMPUTED" in out
    e = store.get(key)
    assert e and (e.data / "b.txt").read_text() == "done" and store.verify(e) == []


def test_two_processes_compute_a_key_once(tmp_path):
    key = "12" * 16
    procs = [_spawn(tmp_path, key, 2) for _ in range(2)]
    outs = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert outs == ["CACHED", "COMPUTED"]
    assert (tmp_path / "counter").read_text().count("x") == 1


def test_corrupt_entry_found_and_recomputed(tmp_path):
    store = ObjectStore(tmp_path)
    key = "34" * 16
    e, _ = store.get_or_compute(key, {}, lambda out: (out / "w.bin").write_bytes(b"\0" * 4096))
    with open(e.data / "w.bin", "r+b") as f:
        f.seek(100)
        f.write(b"\1")
    assert store.verify(e) == ["w.bin: content digest mismatch"]
    events = []
    e2, cached = store.get_or_compute(key, {}, lambda out: (out / "w.bin").write_bytes(b"\0" * 4096),
                                      verify=True, on_event=lambda ev, info: events.append(ev))
    assert not cached and events == ["corrupt_entry_recomputed"]
    assert store.verify(e2) == []


def test_cache_cli_verify_and_gc(tmp_path):
    store = ObjectStore(tmp_path / "c")
    e, _ = store.get_or_compute("56" * 16, {"step": "x"}, lambda out: (out / "f").write_text("a"))
    (e.data / "f").write_text("b")
    env = dict(os.environ, SLIM_CACHE_DIR=str(tmp_path / "c"))
    r = subprocess.run([sys.executable, "-m", "slim.cache", "verify"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 1 and "CORRUPT " + "56" * 16 in r.stdout
    r = subprocess.run([sys.executable, "-m", "slim.cache", "gc", "--dry-run", "--builds",
                        str(tmp_path / "nobuilds")], env=env, capture_output=True, text=True)
    assert "would remove " + "56" * 16 in r.stdout and store.get("56" * 16) is not None
    r = subprocess.run([sys.executable, "-m", "slim.cache", "gc", "--builds",
                        str(tmp_path / "nobuilds")], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and store.get("56" * 16) is None


def test_digest_memo_skips_unchanged_files(tmp_path, monkeypatch):
    f = tmp_path / "big.bin"
    f.write_bytes(os.urandom(1 << 16))
    memo = DigestMemo(tmp_path / "memo.sqlite")
    d1 = memo.digest(f)
    import slim.cache.digest as dg
    monkeypatch.setattr(dg, "file_digest", lambda p: (_ for _ in ()).throw(AssertionError("re-read")))
    assert memo.digest(f) == d1
    monkeypatch.undo()
    f.write_bytes(os.urandom(1 << 16))
    assert DigestMemo(tmp_path / "memo.sqlite").digest(f) != d1
