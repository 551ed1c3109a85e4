"""Digest throughput: xxh3-128 vs sha256 on a 1 GiB file, and memoised re-digest vs first digest.

Both measured side by side in one run (this machine is noisy; compare ratios).
Usage: python bench/hashing.py [--size-mib 1024]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from slim.cache.digest import DigestMemo, file_digest


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(8 << 20), b""):
            h.update(b)
    return h.hexdigest()


def timed(fn, *a, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*a)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "blob.bin"
        chunk = os.urandom(1 << 20)
        with open(f, "wb") as out:
            for _ in range(a.size_mib):
                out.write(chunk)
        file_digest(f)  # warm the page cache so both hashes read from memory
        gib = a.size_mib / 1024
        t_x = timed(file_digest, f)
        t_s = timed(sha256_file, f)
        print(f"file: {a.size_mib} MiB (page cache warm), best of 3")
        print(f"xxh3-128 : {t_x:7.3f} s  {gib / t_x:6.2f} GiB/s")
        print(f"sha256   : {t_s:7.3f} s  {gib / t_s:6.2f} GiB/s")
        print(f"ratio sha256/xxh3 time: {t_s / t_x:.1f}x")
        memo = DigestMemo(Path(d) / "memo.sqlite")
        t0 = time.perf_counter()
        memo.digest(f)
        t_first = time.perf_counter() - t0
        t_memo = timed(memo.digest, f, repeat=5)
        print(f"first digest (memo miss): {t_first * 1e3:9.2f} ms")
        print(f"memoised re-digest      : {t_memo * 1e3:9.3f} ms")
        print(f"ratio first/memoised: {t_first / t_memo:.0f}x  (target >= 100x)")


if __name__ == "__main__":
    main()
