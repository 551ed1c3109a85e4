"""Every tier YAML is valid HardwareConfig data, with cited sources and consistent formats."""
from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError

from slim.config.schema import HardwareConfig, ModelConfig

ROOT = Path(__file__).resolve().parents[2]
TIERS = sorted((ROOT / "conf" / "hardware").glob("*.yaml"))
EXPECTED = {"apple8gb", "apple16gb", "rtx3060_12gb", "rtx4090_24gb", "h100_80gb", "cpu16gb",
            "edge4gb", "jetson_orin_8gb"}
CAPS = {"fp8", "bf16", "fp16", "int4_kernels", "int8_kernels"}


def load(f: Path):
    return OmegaConf.merge(OmegaConf.structured(HardwareConfig), OmegaConf.load(f))


def test_all_tiers_present():
    assert EXPECTED <= {f.stem for f in TIERS}


@pytest.mark.parametrize("f", TIERS, ids=lambda f: f.stem)
def test_tier_loads_and_is_sane(f):
    hw = load(f)
    assert hw.name == f.stem
    assert isinstance(hw.backend, str) and hw.backend.strip()   # a label: cuda, rocm, metal, cpu...
    assert hw.memory_gb > 0 and 0 < hw.usable_fraction <= 1 and hw.reserve_gb >= 0
    assert hw.bandwidth_gbs > 0 and hw.context_length >= 512
    assert CAPS <= set(hw.capabilities)
    assert all(isinstance(v, bool) for v in hw.capabilities.values())
    assert hw.formats and set(hw.formats) <= {"gguf", "compressed-tensors", "safetensors", "mlx", "onnx"}
    assert not set(hw.formats) & set(hw.emulates)
    assert hw.sources and all(s.startswith("https://") for s in hw.sources)
    assert "#" in f.read_text()  # citations as comments too
    if hw.compute_capability is not None:   # NVIDIA's numbering
        assert hw.backend == "cuda"
    if hw.backend == "cuda":
        assert hw.compute_capability and "compressed-tensors" in hw.formats
        if hw.capabilities.fp8:   # fp8 tensor cores start at cc 8.9
            assert hw.compute_capability >= 8.9
    if hw.backend in ("metal", "cpu"):   # no fp8 units, no compressed-tensors int4/fp8 kernels
        assert not hw.capabilities.fp8 and "compressed-tensors" not in hw.formats


def test_unknown_key_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "conf/hardware/apple8gb.yaml").read_text() + "\nmemroy_gb: 9\n")
    with pytest.raises(ConfigKeyError):
        load(bad)


def test_spot_values():
    t = {f.stem: load(f) for f in TIERS}
    assert t["apple8gb"].formats[:2] == ["gguf", "safetensors"] and not t["apple8gb"].capabilities.fp8
    assert t["rtx3060_12gb"].compute_capability == 8.6 and t["rtx3060_12gb"].bandwidth_gbs == 360
    assert t["rtx3060_12gb"].capabilities.int4_kernels and not t["rtx3060_12gb"].capabilities.fp8
    assert t["rtx4090_24gb"].compute_capability == 8.9 and t["rtx4090_24gb"].capabilities.fp8
    assert t["h100_80gb"].bandwidth_gbs == 3350 and t["h100_80gb"].compute_capability == 9.0
    assert t["jetson_orin_8gb"].compute_capability == 8.7 and t["jetson_orin_8gb"].bandwidth_gbs == 68
    assert t["edge4gb"].formats == ["gguf", "onnx"] and t["edge4gb"].backend == "cpu"
    assert t["edge4gb"].capabilities.onnx_ep_cpu and not t["h100_80gb"].capabilities.onnx_ep_cpu
    assert 40 <= t["cpu16gb"].bandwidth_gbs <= 52


@pytest.mark.parametrize("stem,provenance", [("llama3_1b", "Llama-3.2-1B"), ("llama3_3b", "Llama-3.2-3B"),
                                             ("llama3_8b", "Llama-3.1-8B"), ("llama3_70b", "Llama-3.1-70B")])
def test_arch_models_load(stem, provenance):
    m = OmegaConf.merge(OmegaConf.structured(ModelConfig),
                        OmegaConf.load(ROOT / "conf" / "model" / f"{stem}.yaml"))
    assert m.name == stem and m.source == "arch" and provenance in m.provenance and m.license
    a = m.arch
    for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "vocab_size", "tie_word_embeddings", "max_position_embeddings"):
        assert k in a
    assert a.vocab_size == 128256
    assert a.hidden_size % a.num_attention_heads == 0
