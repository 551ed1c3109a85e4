"""Capability checks compare method declarations with tier data; suggestions are data-driven."""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from slim.config.schema import HardwareConfig
from slim.hardware import check, runnable_methods

ROOT = Path(__file__).resolve().parents[2]


def tier(stem):
    hw = OmegaConf.merge(OmegaConf.structured(HardwareConfig),
                         OmegaConf.load(ROOT / "conf/hardware" / f"{stem}.yaml"))
    return OmegaConf.to_container(hw)


def gguf(name):
    return {"name": name, "family": "gguf", "formats": ["gguf"]}


METHODS = {
    "q8_0": gguf("q8_0"),
    "q6_k": gguf("q6_k"),
    "q4_k_m": gguf("q4_k_m"),
    "gptq_w4": {"name": "gptq_w4", "family": "llmc", "formats": ["compressed-tensors"],
                "requires": {"int4_kernels": True}},
    "fp8_dynamic": {"name": "fp8_dynamic", "family": "llmc", "formats": ["compressed-tensors"],
                    "requires": {"fp8": True}},
    "wanda50": {"name": "wanda50", "family": "prune", "formats": ["safetensors"]},
    "auto": {"name": "auto", "family": "auto", "formats": [], "candidates": ["q8_0"]},
}


def test_fp8_on_tier_without_fp8_lists_alternatives():
    errs = check(METHODS["fp8_dynamic"], tier("apple8gb"), False, METHODS)
    assert errs
    cap = [e for e in errs if "capability fp8" in e]
    assert len(cap) == 1
    msg = cap[0]
    assert "method fp8_dynamic" in msg and "apple8gb (metal)" in msg
    assert "methods this tier runs: q8_0, q6_k, q4_k_m, wanda50" in msg
    assert "fp8_dynamic" not in msg.split("runs:")[1] and "auto" not in msg.split("runs:")[1]
    # and the format problem is reported too, naming emulation as the way out
    fmt = [e for e in errs if "compressed-tensors" in e and "natively" in e]
    assert fmt and "allow_emulation=true" in fmt[0]


def test_fp8_on_ampere_cuda():
    errs = check(METHODS["fp8_dynamic"], tier("rtx3060_12gb"), False, METHODS)
    assert len(errs) == 1 and "capability fp8" in errs[0] and "rtx3060_12gb (cuda)" in errs[0]
    assert "gptq_w4" in errs[0]
    assert check(METHODS["fp8_dynamic"], tier("rtx4090_24gb"), False, METHODS) == []
    assert check(METHODS["fp8_dynamic"], tier("h100_80gb"), False, METHODS) == []


def test_format_emulation_opt_in():
    hw = tier("apple8gb")
    errs = check(METHODS["gptq_w4"], hw, False, METHODS)
    assert len(errs) == 1 and "compressed-tensors" in errs[0]
    assert check(METHODS["gptq_w4"], hw, True, METHODS) == []
    # edge4gb cannot emulate compressed-tensors at all
    errs = check(METHODS["gptq_w4"], tier("edge4gb"), True, METHODS)
    assert errs and "allow_emulation" not in errs[0]


def test_runnable_methods():
    assert runnable_methods(tier("apple8gb"), METHODS) == ["q8_0", "q6_k", "q4_k_m", "wanda50"]
    assert runnable_methods(tier("apple8gb"), METHODS, allow_emulation=True) == \
        ["q8_0", "q6_k", "q4_k_m", "gptq_w4", "wanda50"]
    assert runnable_methods(tier("rtx3060_12gb"), METHODS) == \
        ["q8_0", "q6_k", "q4_k_m", "gptq_w4", "wanda50"]
    assert runnable_methods(tier("h100_80gb"), METHODS) == \
        ["q8_0", "q6_k", "q4_k_m", "gptq_w4", "fp8_dynamic", "wanda50"]
    assert runnable_methods(tier("edge4gb"), METHODS) == ["q8_0", "q6_k", "q4_k_m"]
    assert runnable_methods(tier("cpu16gb"), None) == []


def test_no_alternatives_and_no_methods():
    only = {"fp8_dynamic": METHODS["fp8_dynamic"]}
    errs = check(METHODS["fp8_dynamic"], tier("edge4gb"), False, only)
    assert all("no configured method runs on this tier" in e for e in errs)
    errs = check(METHODS["fp8_dynamic"], tier("edge4gb"), False)
    assert errs and all("methods this tier runs" not in e for e in errs)


def test_numeric_requirement():
    m = {"name": "needs_sm80", "formats": ["compressed-tensors"], "requires": {"compute_capability": 8.0}}
    assert check(m, tier("rtx3060_12gb"), False) == []
    errs = check(m, tier("cpu16gb"), True)
    assert any("compute_capability ≥ 8.0" in e for e in errs)


def test_runnable_on_every_tier_is_data_driven():
    # every tier runs some GGUF method; only fp8 tiers run fp8_dynamic
    for f in sorted((ROOT / "conf/hardware").glob("*.yaml")):
        hw = tier(f.stem)
        r = runnable_methods(hw, METHODS)
        assert "q4_k_m" in r
        assert ("fp8_dynamic" in r) == bool(hw["capabilities"]["fp8"])


def test_no_tier_names_in_code():
    names = [f.stem for f in (ROOT / "conf/hardware").glob("*.yaml")]
    for src in (ROOT / "slim/hardware").glob("*.py"):
        text = src.read_text()
        for n in names:
            assert n not in text, f"{src.name} mentions tier {n}"
