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
    """A llama.cpp runtime notes where it runs (the CPU on this host: the PyPI build has no GPU
    backend), and the report lists the devices of the steps that ran."""
    import json

    import llama_cpp

    from slim.runtimes.llamacpp import LlamaCppRuntime
    from slim.steps import base
    base._DEVICES.clear()
    with LlamaCppRuntime(tiny_q4 / "model.gguf", n_ctx=256, threads=1) as rt:
        assert rt.gpu_layers == (-1 if llama_cpp.llama_supports_gpu_offload() else 0)
    expected = "llama.cpp GPU offload" if llama_cpp.llama_supports_gpu_offload() \
        else "llama.cpp cpu"
    assert base.devices_used() == [expected]
    report = json.loads((tiny_q4 / "report.json").read_text())
    ran = [s for s in report["steps"] if not s["cached"]]
    assert all(s.get("devices") for s in ran)
    assert set(report["environment"]["devices"]) == {d for s in ran for d in s["devices"]}


def test_llmc_oneshot_notes_llm_compressors_onload_device(monkeypatch):
    """llm-compressor's sequential pipeline onloads each layer to its main device (CUDA/MPS when
    present); the step notes that device, not where the 16-bit weights rest (the CPU)."""
    import torch
    import llmcompressor.utils.dev as dev

    from slim.steps import llmc_oneshot as L
    monkeypatch.setattr(dev, "get_main_device", lambda: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H100 80GB HBM3")
    assert L._main_device(L.Params(algorithm="gptq", scheme="W4A16")) == \
        "cuda (NVIDIA H100 80GB HBM3)"
    assert L._main_device(L.Params(algorithm="magnitude", sparsity=0.5)) == "cpu"
    monkeypatch.setattr(dev, "get_main_device", lambda: torch.device("mps"))
    assert L._main_device(L.Params(algorithm="wanda", sparsity=0.5)) == "mps"
