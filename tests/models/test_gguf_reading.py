"""memoized_gguf: one GGUFReader per file inside the context, the library untouched outside."""
from __future__ import annotations

import numpy as np


def _tiny_gguf(path):
    import gguf
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_tensor("token_embd.weight", np.ones((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_memoized_gguf_shares_readers_and_name_maps(tmp_path):
    import gguf

    from slim.models.gguf_reading import memoized_gguf

    f = _tiny_gguf(tmp_path / "m.gguf")
    real_reader, real_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with memoized_gguf() as reader:
        a = gguf.GGUFReader(str(f))
        assert gguf.GGUFReader(str(f)) is a and reader(str(f)) is a
        assert a.fields["general.architecture"].contents() == "llama"
        m = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2) is m
    assert gguf.GGUFReader is real_reader and gguf.get_tensor_name_map is real_map
    assert gguf.GGUFReader(str(f)) is not a
