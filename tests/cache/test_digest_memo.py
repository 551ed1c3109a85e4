"""The digest memo: per host, outside the shared cache; many processes of one host share it."""
import subprocess
import sys

OPEN = """
import sys, time
from slim.cache.digest import DigestMemo
start = float(sys.argv[2])
while time.time() < start:
    pass
m = DigestMemo(sys.argv[1])
print(m.digest(sys.argv[3]))
"""


def test_many_processes_open_a_fresh_memo_together(tmp_path):
    # A fresh sqlite file switched to WAL by several processes at once used to raise
    # "database is locked" in all but one (CI run of stop 12).
    import time

    f = tmp_path / "f.bin"
    f.write_bytes(b"x" * 1000)
    start = str(time.time() + 3)
    procs = [subprocess.Popen([sys.executable, "-c", OPEN, str(tmp_path / "d.sqlite"), start, str(f)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    results = [p.communicate(timeout=120) for p in procs]
    errors = [err for out, err in results if err.strip()]
    assert errors == []
    assert len({out.strip() for out, _ in results}) == 1


def test_memo_is_per_host_outside_the_cache_in_rollback_journal_mode(tmp_path, monkeypatch):
    """Issue 21: a cache on NFS shared by nodes must not hold the memo (WAL is unsupported on
    network filesystems; (dev, inode) means nothing on another host)."""
    import sqlite3

    from slim.cache.digest import memo_path
    from slim.cache.store import ObjectStore

    monkeypatch.setenv("SLIM_MEMO_DIR", str(tmp_path / "local"))
    monkeypatch.setenv("SLIM_HOST_ID", "node-a")
    a = memo_path()
    monkeypatch.setenv("SLIM_HOST_ID", "node-b")
    assert a != memo_path() and a.parent == memo_path().parent == tmp_path / "local"
    store = ObjectStore(tmp_path / "shared-cache")
    f = tmp_path / "f.bin"
    f.write_bytes(b"y" * 4096)
    store.memo.digest(f)
    assert store.memo.path == tmp_path / "local" / "digests-node-b.sqlite"
    assert not list((tmp_path / "shared-cache").glob("*.sqlite*"))
    mode = sqlite3.connect(store.memo.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "delete"
    monkeypatch.setenv("SLIM_MEMO_DIR", "none")
    assert memo_path() is None and ObjectStore(tmp_path / "c2").memo.digest(f) == \
        store.memo.digest(f)


def test_unusable_memo_falls_back_to_hashing(tmp_path, capsys):
    from slim.cache.digest import DigestMemo, file_digest

    (tmp_path / "ro").mkdir()
    bad = tmp_path / "ro" / "memo.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    f = tmp_path / "f.bin"
    f.write_bytes(b"z" * 100)
    m = DigestMemo(bad)
    assert m.digest(f) == file_digest(f)
    assert "digest memo" in capsys.readouterr().err
