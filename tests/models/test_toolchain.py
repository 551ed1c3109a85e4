"""The converter, gguf-py and the compiled llama.cpp come from one revision, and say so when not."""
from __future__ import annotations

import json
import shutil
import sys

import pytest

from slim import toolchain
from slim.errors import SlimError


def test_installed_toolchain_is_one_revision():
    """Fails when make setup's converter/gguf-py and the installed llama-cpp-python drift apart."""
    assert toolchain.check() == []
    tid = toolchain.toolchain_id()
    from importlib import metadata
    assert tid.startswith(f"llama-cpp-python=={metadata.version('llama_cpp_python')};")


def test_toolchain_id_is_in_the_convert_and_imatrix_keys():
    from slim.cache.keys import lib_versions
    from slim.steps import convert_gguf, imatrix
    for mod in (convert_gguf, imatrix):
        assert lib_versions(mod.LIBS)["llama.cpp-toolchain"] == toolchain.toolchain_id()


@pytest.fixture
def copied_toolchain(tmp_path, monkeypatch):
    dest = tmp_path / "llama.cpp"
    shutil.copytree(toolchain.home(), dest)
    monkeypatch.setenv("SLIM_LLAMACPP_DIR", str(dest))
    return dest


def test_drift_is_named(copied_toolchain):
    m = json.loads((copied_toolchain / toolchain.MANIFEST).read_text())
    m["llama_cpp_python"], m["gguf_py_digest"] = "0.0.1", "0" * 64
    (copied_toolchain / toolchain.MANIFEST).write_text(json.dumps(m))
    (copied_toolchain / "conversion" / "llama.py").write_text("# edited\n", encoding="utf-8")
    problems = toolchain.check()
    assert len(problems) == 3
    assert "0.0.1" in problems[0] and "gguf" in problems[1] and "modified" in problems[2]
    with pytest.raises(SlimError) as e:
        toolchain.require()
    assert e.value.reason == "toolchain_mismatch" and "make setup" in str(e.value)


def test_missing_toolchain_says_run_make_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("SLIM_LLAMACPP_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(SlimError) as e:
        toolchain.require()
    assert "make setup" in str(e.value)


def test_a_broken_converter_module_is_not_called_unsupported(copied_toolchain, monkeypatch,
                                                             tmp_path):
    """auto-round's bundled converter reported a gguf-py mismatch as 'not supported'."""
    from slim.steps.convert_gguf import model_class

    qwen = copied_toolchain / "conversion" / "qwen.py"
    qwen.write_text(qwen.read_text() + "\n_ = gguf.MODEL_ARCH.NOT_IN_THIS_GGUF\n")
    monkeypatch.setattr(toolchain, "require", lambda: {})
    for name in [n for n in sys.modules if n == "conversion" or n.startswith("conversion.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not p.endswith("llama.cpp")])
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"]}))
    with pytest.raises(SlimError) as e:
        model_class(d)
    assert e.value.reason == "converter_import_failed"
    assert "conversion/qwen.py" in str(e.value) and "NOT_IN_THIS_GGUF" in str(e.value)
    (d / "config.json").write_text(json.dumps({"architectures": ["NoSuchForCausalLM"]}))
    with pytest.raises(SlimError) as e:
        model_class(d)
    assert e.value.reason == "unsupported_architecture"
    for name in [n for n in sys.modules if n == "conversion" or n.startswith("conversion.")]:
        del sys.modules[name]   # the next test imports the real converter again


def test_tokenizer_pre_must_be_a_name_the_converter_knows():
    from slim.steps.convert_gguf import Params
    assert Params(tokenizer_pre="qwen2").validate() == []
    errs = Params(tokenizer_pre="no-such-pre").validate()
    assert errs and errs[0][0] == "tokenizer_pre"
