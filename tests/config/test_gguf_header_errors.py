"""A broken GGUF is one clear SlimError from the header reader (validation, verify and quantize
stats all read through it), never a ValueError or KeyError traceback."""
import struct

import pytest

from slim.config.validate import gguf_problem
from slim.errors import SlimError
from slim.models.gguf_header import read_gguf_header


def _gguf(tensor_type: int, data: bytes = b"\0" * 32) -> bytes:
    name = b"w"
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 0)
    info = struct.pack("<Q", len(name)) + name + struct.pack("<IQIQ", 1, 4, tensor_type, 0)
    body = head + info
    return body + b"\0" * (-len(body) % 32) + data


def test_well_formed_file_reads(tmp_path):
    f = tmp_path / "ok.gguf"
    f.write_bytes(_gguf(0))                       # F32, 4 elements
    _, tensors = read_gguf_header(f)
    assert [(t.name, t.type_name, t.n_bytes) for t in tensors] == [("w", "F32", 16)]


@pytest.mark.parametrize("content, words", [
    (b"", "truncated"),
    (b"GGUF\3\0\0\0", "truncated"),
    (_gguf(9999), "tensor type 9999"),
    (_gguf(0, data=b""), "tensor data ends"),
], ids=["empty", "cut-after-version", "unknown-tensor-type", "no-tensor-data"])
def test_broken_files_are_one_slim_error(tmp_path, content, words):
    f = tmp_path / "bad.gguf"
    f.write_bytes(content)
    with pytest.raises(SlimError, match=words):
        read_gguf_header(f)
    if content[:4] == b"GGUF":
        assert words in gguf_problem(f)
