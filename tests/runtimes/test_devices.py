"""Where torch and llama.cpp compute (issue 16): CUDA/MPS for torch and every layer on the GPU
for llama.cpp when present, the CPU otherwise (this CI host); the device a step used reaches
its 'finished' event and the report."""
from __future__ import annotations

import types

import pytest


def test_torch_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    from slim.steps.base import torch_device
    monkeypatch.delenv("SLIM_TORCH_DEVICE", raising=False)

    def fake(cuda, mps):
        return types.SimpleNamespace(
            cuda=types.SimpleNamespace(is_available=lambda: cuda),
            backends=types.SimpleNamespace(mps=types.SimpleNamespace(is_available=lambda: mps)))
    assert torch_device(fake(True, True)) == "cuda"
    assert torch_device(fake(False, True)) == "mps"
    assert torch_device(fake(False, False)) == "cpu"
    monkeypatch.setenv("SLIM_TORCH_DEVICE", "cpu")
    assert torch_device(fake(True, True)) == "cpu"


def test_llama_gpu_layers_follow_the_build(monkeypatch):
    import llama_cpp

    from slim.runtimes.llamacpp import gpu_layers
    monkeypatch.delenv("SLIM_LLAMA_GPU", raising=False)
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)
    assert gpu_layers() == -1
    monkeypatch.setenv("SLIM_LLAMA_GPU", "off")
    assert gpu_layers() == 0
    monkeypatch.delenv("SLIM_LLAMA_GPU")
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)
    assert gpu_layers() == 0


def test_runtimes_note_their_device(tiny_q4):
    """The shared tiny build: every step's 'finished' event names a device, the report's
    environment lists them; on this CPU-only host, llama.cpp ran on the CPU."""
    import json
    events = [json.loads(x) for x in (tiny_q4 / "events.jsonl").read_text().splitlines()]
    report = json.loads((tiny_q4 / "report.json").read_text())
    ran = [e for e in events if e["event"] == "finished"]
    if not ran:
        pytest.skip("every step came from the cache in this session")
    assert all(e.get("devices") for e in ran)
    devices = report["environment"]["devices"]
    assert "llama.cpp cpu" in devices or "llama.cpp GPU offload" in devices
    import llama_cpp
    if not llama_cpp.llama_supports_gpu_offload():
        assert "llama.cpp GPU offload" not in devices
    steps = {s["id"]: s for s in report["steps"]}
    assert any("llama.cpp" in d for s in steps.values() for d in s.get("devices", []))
