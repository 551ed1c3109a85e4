"""A user's HF folder: 16-bit safetensors referenced by digest (no second copy, dtype kept,
a bf16 source converts to a BF16 GGUF), fp32 rewritten to float16, edits caught."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import compose

SHAPE = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2)


def _folder(tmp: Path, dtype: str) -> Path:
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from scale import save_random_folder
    return save_random_folder(SHAPE, tmp / f"m-{dtype}", dtype)


def _executor(tmp: Path):
    from slim.cache.store import ObjectStore
    from slim.executor import EventLog, Executor
    return Executor(ObjectStore(tmp / "cache"), EventLog(None), threads=1)


def test_import_plan_reads_headers(tmp_path):
    from slim.models.hf_io import gguf_outtype, import_plan
    bf16, f32 = _folder(tmp_path, "bfloat16"), _folder(tmp_path, "float32")
    assert import_plan(bf16)["mode"] == "reference" and import_plan(bf16)["dtype"] == "bfloat16"
    assert gguf_outtype(bf16) == "bf16"
    how = import_plan(f32)
    assert how == {"mode": "rewrite", "dtype": "float16", "source_dtype": "float32",
                   "params": how["params"]} and how["params"] > 0
    assert gguf_outtype(f32) == "f16"


def test_bf16_folder_referenced_not_copied_and_bf16_gguf(tmp_path):
    import gguf

    from slim.plan import Planner
    src = _folder(tmp_path, "bfloat16")
    cfg = compose(["model=hf", f"model.path={src}", "method=q4_k_m", "probes=quick",
                   "calibration=small"])
    planner = Planner(cfg)
    parent = planner.parent()
    planner.root_parent = parent
    art = planner.gguf_f16(parent)
    steps = {k: v for k, v in planner.steps.items()}
    assert steps[art.step].params["outtype"] == "bf16"
    ex = _executor(tmp_path)
    res = ex.run(steps)
    imp = res["import_parent"].entry.data
    weights = imp / "model.safetensors"
    assert weights.is_symlink() and weights.resolve() == (src / "model.safetensors").resolve()
    refs = json.loads((imp / "slim-references.json").read_text())
    assert set(refs) == {"model.safetensors"}
    assert json.loads((imp / "import.json").read_text())["mode"] == "reference"
    # the cache holds config/tokenizer only for the import (no second copy of the weights)
    own = sum(os.lstat(p).st_size for p in imp.rglob("*") if not p.is_symlink())
    assert own < (src / "model.safetensors").stat().st_size / 4
    assert ex.store.size(res["import_parent"].entry) < (src / "model.safetensors").stat().st_size / 4
    r = gguf.GGUFReader(res[art.step].entry.data / "model.gguf")
    types = {t.tensor_type.name for t in r.tensors if len(t.shape) == 2}
    assert types == {"BF16"}


def test_in_place_edit_changes_key_and_is_caught(tmp_path):
    from slim.errors import StepFailed
    from slim.plan import Planner
    src = _folder(tmp_path, "float16")
    cfg = compose(["model=hf", f"model.path={src}", "method=q4_k_m"])
    planner = Planner(cfg)
    parent = planner.parent()
    planner.root_parent = parent
    art = planner.gguf_f16(parent)
    ex = _executor(tmp_path)
    ex.run({"import_parent": planner.steps["import_parent"]})
    key1 = ex.resolved["import_parent"].key
    # the user rewrites the weights in place after the import
    w = src / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    with open(w, "r+b") as f:
        f.write(data)
    # this build's keys were computed from the old bytes: the converter must not read the new ones
    ex2 = _executor(tmp_path)
    ex2.resolved = dict(ex.resolved)
    with pytest.raises(StepFailed) as e:
        ex2._check_inputs(planner.steps[art.step],
                          {"model": str(ex.resolved["import_parent"].entry.data)})
    assert e.value.reason == "model_changed"
    # a new build computes a new key for the import (and so for everything downstream)
    ex3 = _executor(tmp_path)
    ex3.resolve({"import_parent": planner.steps["import_parent"]})
    assert ex3.resolved["import_parent"].key != key1


def test_fp32_folder_rewritten_as_float16(tmp_path):
    from safetensors import safe_open

    from slim.plan import Planner
    src = _folder(tmp_path, "float32")
    cfg = compose(["model=hf", f"model.path={src}", "method=q4_k_m"])
    planner = Planner(cfg)
    planner.parent()
    res = _executor(tmp_path).run({"import_parent": planner.steps["import_parent"]})
    out = res["import_parent"].entry.data
    assert not (out / "model.safetensors").is_symlink()
    with safe_open(out / "model.safetensors", "pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"F16"}
    how = json.loads((out / "import.json").read_text())
    assert how["source_dtype"] == "float32" and how["dtype"] == "float16"
    assert "float16" in how["note"]


@pytest.mark.slow
def test_bf16_folder_full_build_report(tmp_path):
    """A whole q4_k_m build from a bf16 folder: the report says the parent was referenced and
    evaluated as a BF16 GGUF; the cache holds no second copy of the weights."""
    from slim.build import run_build
    src = _folder(tmp_path, "bfloat16")
    cfg = compose(["model=hf", f"model.path={src}", "method=q4_k_m", "probes=quick",
                   "calibration=small", "threads=1", f"paths.builds={tmp_path / 'builds'}"])
    out = run_build(cfg, quiet=True)
    r = json.loads((out / "report.json").read_text())
    assert r["parent"]["gguf_type"] == "BF16"
    assert r["parent"]["import"]["mode"] == "reference"
    assert "referenced by digest" in (out / "report.md").read_text()
