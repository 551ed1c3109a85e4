"""open_runtime dispatch and the errors a user sees for bad model paths."""
from __future__ import annotations

import numpy as np
import pytest

from slim.errors import SlimError
from slim.runtimes import log_softmax, open_runtime, runtime_kind


def test_kind_by_format(tmp_path, smollm_gguf):
    assert runtime_kind(smollm_gguf) == "llama.cpp"
    d = tmp_path / "hf"
    d.mkdir()
    (d / "config.json").write_text("{}")
    assert runtime_kind(d) == "transformers"


def test_missing_file_names_it(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(SlimError, match="nope.gguf"):
        open_runtime(missing)


def test_corrupt_gguf_names_it(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf at all" * 10)
    with pytest.raises(SlimError, match="broken.gguf"):
        open_runtime(bad)


def test_truncated_gguf_names_it(tmp_path, smollm_gguf):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(smollm_gguf.read_bytes()[: 1 << 20])
    with pytest.raises(SlimError, match="cut.gguf"):
        open_runtime(cut)


def test_folder_without_config(tmp_path):
    with pytest.raises(SlimError, match="config.json"):
        open_runtime(tmp_path)


def test_hf_folder_without_weights(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(SlimError, match="no weights"):
        open_runtime(tmp_path)


def test_hf_folder_with_pickle_only(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "pytorch_model.bin").write_bytes(b"\0")
    with pytest.raises(SlimError, match="pickle"):
        open_runtime(tmp_path)


def test_unknown_file_kind(tmp_path):
    f = tmp_path / "weights.txt"
    f.write_text("hello")
    with pytest.raises(SlimError, match="weights.txt"):
        open_runtime(f)


def test_log_softmax_float64_then_float32():
    x = np.array([[1000.0, 0.0, -1000.0], [0.1, 0.2, 0.3]], dtype=np.float32)
    lp = log_softmax(x)
    assert lp.dtype == np.float32
    assert np.allclose(np.exp(lp.astype(np.float64)).sum(1), 1.0)
    assert lp[0, 0] == 0.0 and lp[0, 2] == np.float32(-2000.0)  # no overflow, no -inf
    big = np.random.default_rng(0).normal(size=(600, 50)).astype(np.float32)  # > one chunk
    ref = big - np.log(np.exp(big.astype(np.float64)).sum(1, keepdims=True))
    np.testing.assert_allclose(log_softmax(big), ref, atol=1e-6)
    np.testing.assert_allclose(log_softmax(big[0]), ref[0], atol=1e-6)
