"""Memory preflight (issue 16): each step kind's memory model, a step that does not fit fails
before it starts with one message, and plan=true prints the build's peak memory on this host."""
from __future__ import annotations

import pytest

from tests.conftest import TINY, compose

MODEL_1B = {"params": 1_070_000_000, "bytes_per_param": 2, "import_mode": "reference",
            "device": "cpu", "n_layers": 16, "kv_dim": 512}


def test_declared_models_scale_with_params():
    from slim.steps.base import memory_need
    small = dict(MODEL_1B, params=MODEL_1B["params"] // 10)
    for kind, params in [("convert_gguf", {}), ("quantize_gguf", {}), ("probe_run", {}),
                         ("tiny_model", {"arch": {}})]:
        big, little = memory_need(kind, params, MODEL_1B), memory_need(kind, params, small)
        assert big["declared"] and big["ram"] > little["ram"] > 0, kind
    # a referenced 16-bit folder costs no weights; a rewrite holds one 16-bit copy
    ref = memory_need("import_hf", {}, MODEL_1B)
    rew = memory_need("import_hf", {}, dict(MODEL_1B, import_mode="rewrite"))
    assert ref["ram"] <= 2**30 < 2 * MODEL_1B["params"] < rew["ram"]
    # the transformers runtime loads float32: twice llama.cpp's 16-bit GGUF
    hf = memory_need("probe_run", {"runtime": "transformers"}, MODEL_1B)
    assert hf["ram"] > memory_need("probe_run", {}, MODEL_1B)["ram"] + MODEL_1B["params"]


def test_undeclared_torch_step_assumes_float32():
    from slim.steps.base import memory_need
    need = memory_need("lowrank", {}, MODEL_1B)
    assert not need["declared"] and need["ram"] >= 4 * MODEL_1B["params"]


def test_problem_message_names_step_need_free_and_what_to_do():
    from slim.hardware.host import preflight_problem
    need = {"ram": 40 << 30, "vram": 0, "why": "the model in float32"}
    msg = preflight_problem("imatrix:import_parent", need, avail=8 << 30)
    assert "imatrix:import_parent" in msg and "40.00 GiB" in msg and "8.00 GiB" in msg
    assert "SLIM_MEMORY_CHECK=off" in msg and "machine with more RAM" in msg
    assert preflight_problem("x", {"ram": 1 << 30, "why": ""}, avail=8 << 30) is None
    gpu = preflight_problem("x", {"ram": 1, "vram": 20 << 30, "why": "w"}, avail=8 << 30,
                            vram=4 << 30)
    assert "GPU memory" in gpu and "4.00 GiB free" in gpu


def test_step_too_big_fails_before_it_starts(tmp_path, monkeypatch):
    from slim.cache.store import ObjectStore
    from slim.errors import StepFailed
    from slim.executor import EventLog, Executor
    from slim.plan import Planner
    monkeypatch.delenv("SLIM_MEMORY_CHECK", raising=False)
    planner = Planner(compose(TINY + ["method=q4_k_m"]))
    planner.parent()
    log = EventLog(None)
    # a "model" of 10 trillion parameters: no host has 50 TB free
    ex = Executor(ObjectStore(tmp_path / "cache"), log, threads=1,
                  memory_model=dict(MODEL_1B, params=10**13))
    with pytest.raises(StepFailed) as e:
        ex.run({"import_parent": planner.steps["import_parent"]})
    assert e.value.reason == "not_enough_memory" and "import_parent" in str(e.value)
    assert not [r for r in log.events if r["event"] == "started"]
    assert not list((tmp_path / "cache").glob("objects/**/manifest.json"))
    # the check can be turned off: then the (tiny, real) step runs
    monkeypatch.setenv("SLIM_MEMORY_CHECK", "off")
    log2 = EventLog(None)
    ex2 = Executor(ObjectStore(tmp_path / "cache"), log2, threads=1,
                   memory_model=dict(MODEL_1B, params=10**13))
    ex2.run({"import_parent": planner.steps["import_parent"]})
    started = [r for r in log2.events if r["event"] == "started"]
    assert started and started[0]["need_ram_bytes"] > 10**13


def test_plan_prints_build_peak_memory_for_8b(capsys):
    from slim.build import run_build
    run_build(compose(["plan=true", "model=llama3_8b", "method=q4_k_m", "hardware=apple8gb"]))
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("building it needs about"))
    assert "GiB RAM at peak (step " in line and "8.03B parameters" in line
    assert "available of" in line
    from slim.planview import build_memory
    mem = build_memory(compose(["model=llama3_8b", "method=q4_k_m", "hardware=apple8gb"]))
    kinds = {r["step"].split(":")[0] for r in mem["steps"]}
    assert {"import_parent", "convert_gguf", "quantize_gguf", "imatrix"} <= kinds
    # an 8B model's peak is many GiB (16-bit weights alone are ~15 GiB)
    assert mem["ram"] > 15 << 30
