"""slim.fileio: the one canonical JSON (its bytes are pinned: cache keys and parent digests
hash them) and the one atomic write."""
from __future__ import annotations

import os
import stat

import pytest

from slim.fileio import atomic_path, atomic_write_bytes, canonical_json, write_json


def test_canonical_json_bytes():
    obj = {"b": [1, 2.5, None], "a": {"z": True, "y": "é"}}
    assert canonical_json(obj) == '{"a":{"y":"\\u00e9","z":true},"b":[1,2.5,null]}'
    assert canonical_json(obj, indent=2) == (
        '{\n  "a": {\n    "y": "\\u00e9",\n    "z": true\n  },\n  "b": [\n    1,\n    2.5,\n    null\n  ]\n}')


def test_atomic_write_sets_mode_and_leaves_no_temp(tmp_path):
    p = tmp_path / "secret.key"
    atomic_write_bytes(p, b"x", mode=0o600)
    assert p.read_bytes() == b"x" and stat.S_IMODE(p.stat().st_mode) == 0o600
    write_json(tmp_path / "r.json", {"b": 1, "a": 2})
    assert (tmp_path / "r.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    assert sorted(os.listdir(tmp_path)) == ["r.json", "secret.key"]


def test_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "plot.png"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(p, keep_suffix=True) as tmp:
            assert tmp.suffix == ".png" and tmp.parent == tmp_path
            tmp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert p.read_bytes() == b"old" and os.listdir(tmp_path) == ["plot.png"]
