"""The digest memo is shared by every process that uses a cache directory."""
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
