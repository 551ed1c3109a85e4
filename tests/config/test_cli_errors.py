"""Bad input: one clear error naming the key, no traceback, nothing written."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, compose


def _slim(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "slim", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=120)


def test_unknown_method_lists_available(tmp_path):
    r = _slim("method=doesnotexist", f"paths.builds={tmp_path}/b")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "method/doesnotexist" in r.stderr and "q4_k_m" in r.stderr and "q8_0" in r.stderr
    assert not (tmp_path / "b").exists()


def test_invalid_value_names_the_key(tmp_path):
    r = _slim("calibration.n_samples=-3", f"paths.builds={tmp_path}/b")
    assert r.returncode == 2, r.stderr
    assert "calibration.n_samples" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()


def test_probe_batch_size_must_be_positive(tmp_path):
    r = _slim("probes.batch_size=0", f"paths.builds={tmp_path}/b")
    assert r.returncode == 2, r.stderr
    assert "probes.batch_size" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()


def test_unknown_gate_rejected_before_work(tmp_path):
    r = _slim("+probes.gates.bogus=1", f"paths.builds={tmp_path}/b")
    assert r.returncode == 2, r.stderr
    assert "probes.gates.bogus: unknown gate" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", ".staging"])
def test_build_name_must_be_one_folder(tmp_path, name):
    r = _slim(f"build_name={name}", f"paths.builds={tmp_path}/b")
    assert r.returncode == 2, r.stderr
    assert "build_name: must be one folder name" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists() and not (tmp_path / "escape").exists()


def test_unknown_key_rejected(tmp_path):
    r = _slim("method.stagez=1")
    assert r.returncode != 0 and "stagez" in r.stderr and "Traceback" not in r.stderr


def test_all_errors_collected_at_once():
    from slim.config.validate import validate
    from slim.errors import ConfigErrors
    cfg = compose(["calibration.n_samples=-3", "calibration.seq_len=4",
                   "probes.fidelity.n_ctx=7", "method.stages.0.params.type=Q9_X"])
    with pytest.raises(ConfigErrors) as e:
        validate(cfg)
    keys = [k for k, _ in e.value.errors]
    assert {"calibration.n_samples", "calibration.seq_len", "probes.fidelity.n_ctx",
            "method.stages[0].params.type"} <= set(keys)


def test_unknown_stage_param_rejected():
    from slim.config.validate import validate
    from slim.errors import ConfigErrors
    cfg = compose(["+method.stages.0.params.bits=3.5"])
    with pytest.raises(ConfigErrors) as e:
        validate(cfg)
    assert any(k == "method.stages[0].params.bits" for k, _ in e.value.errors)


def test_model_dir_without_weights(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text("{}")
    r = _slim("model=hf", f"model.path={d}", f"paths.builds={tmp_path}/b")
    assert r.returncode == 2 and "no weights" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()


def test_every_method_and_tier_composes():
    from slim.config.validate import choices
    for m in choices("method"):
        assert compose([f"method={m}"]).method.name == m
    for h in choices("hardware"):
        assert compose([f"hardware={h}"]).hardware.name == h


def _nothing_written(tmp_path, cache):
    assert not (tmp_path / "b").exists()
    objects = cache / "objects"
    assert not objects.exists() or not any(objects.rglob("manifest.json"))


def test_corrupt_gguf_rejected_before_work(tmp_path, monkeypatch):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 100)
    monkeypatch.setenv("SLIM_CACHE_DIR", str(tmp_path / "cache"))
    r = _slim("model=gguf", f"model.path={bad}", f"paths.builds={tmp_path}/b")
    assert r.returncode == 2 and "model.path" in r.stderr and "corrupt GGUF" in r.stderr
    assert "Traceback" not in r.stderr
    _nothing_written(tmp_path, tmp_path / "cache")


def test_not_a_gguf_rejected(tmp_path, monkeypatch):
    bad = tmp_path / "x.gguf"
    bad.write_text("hello")
    monkeypatch.setenv("SLIM_CACHE_DIR", str(tmp_path / "cache"))
    r = _slim("model=gguf", f"model.path={bad}", f"paths.builds={tmp_path}/b")
    assert r.returncode == 2 and "not a GGUF file" in r.stderr
    _nothing_written(tmp_path, tmp_path / "cache")


def test_truncated_safetensors_rejected(tmp_path, monkeypatch):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (d / "model.safetensors").write_bytes((10 ** 6).to_bytes(8, "little") + b"{\"a\":")
    monkeypatch.setenv("SLIM_CACHE_DIR", str(tmp_path / "cache"))
    r = _slim("model=hf", f"model.path={d}", f"paths.builds={tmp_path}/b")
    assert r.returncode == 2 and "not a valid safetensors file" in r.stderr
    assert "Traceback" not in r.stderr
    _nothing_written(tmp_path, tmp_path / "cache")


def test_unknown_quant_type(tmp_path):
    r = _slim("method.stages.0.params.type=Q9_K", f"paths.builds={tmp_path}/b")
    assert r.returncode == 2 and "method.stages[0].params.type" in r.stderr
    assert "unknown GGUF quant type 'Q9_K'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists()


def test_unknown_tokenizer_pre_rejected_before_work(tmp_path):
    r = _slim("model=tiny_qwen2", "model.tokenizer_pre=bogus", "probes=quick",
              f"paths.builds={tmp_path}/b", f"paths.cache={tmp_path}/c")
    assert r.returncode == 2, r.stderr
    assert "model.tokenizer_pre: 'bogus' is not a pre-tokenizer" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "b").exists() and not (tmp_path / "c" / "objects").exists()


def test_missing_llama_cpp_toolchain_rejected_before_work(tmp_path, monkeypatch):
    monkeypatch.setenv("SLIM_LLAMACPP_DIR", str(tmp_path / "nowhere"))
    r = _slim("model=tiny_llama", "probes=quick", f"paths.builds={tmp_path}/b",
              f"paths.cache={tmp_path}/c")
    assert r.returncode == 2, r.stderr
    assert "llama.cpp toolchain" in r.stderr and "make setup" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "b").exists()
