"""A new method and a new tier are one YAML each: written into a config folder of the user's
(``--config-dir``), they are planned, sized and validated with no code naming them."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hydra import compose as hcompose
from hydra import initialize_config_dir

from slim.config.validate import validate
from slim.errors import ConfigErrors
from slim.hardware import param_shapes
from slim.planview import candidate_rows, model_arch
from tests.conftest import ROOT

GPTQ_W3_G64 = """\
# GPTQ int3 weights in groups of 64 (W3A16), llm-compressor oneshot.
name: gptq_w3_g64
family: llmc
description: GPTQ W3A16 (int3 weights, group 64), compressed-tensors
formats: [compressed-tensors]
requires: {int4_kernels: true}
stages:
  - kind: llmc_oneshot
    params:
      algorithm: gptq
      scheme: W3A16
      group_size: 64
      group_fallbacks: [32]
"""

MI210 = """\
# AMD Instinct MI210 (CDNA2, gfx90a), 64 GB HBM2e at 1.6 TB/s, ROCm.
name: mi210_64gb
description: AMD Instinct MI210 64 GB, ROCm
backend: rocm
memory_gb: 64
usable_fraction: 0.9
bandwidth_gbs: 1638
capabilities: {fp8: false, bf16: true, fp16: true, int4_kernels: true, int8_kernels: true,
               sparse_2of4: false}
formats: [gguf, compressed-tensors, safetensors]
emulates: []
context_length: 8192
runtime_overhead_gb: 1.0
"""


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("userconf")
    (d / "method").mkdir()
    (d / "hardware").mkdir()
    (d / "method" / "gptq_w3_g64.yaml").write_text(GPTQ_W3_G64)
    (d / "hardware" / "mi210_64gb.yaml").write_text(MI210)
    return d


def compose_with(config_dir, overrides):
    import slim.config  # noqa: F401
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hcompose(config_name="config",
                        overrides=[f"hydra.searchpath=[file://{config_dir}]", *overrides])


def _linear_params(arch) -> int:
    return sum(r * c for n, r, c in param_shapes(arch) if n.startswith("blk.") and r > 1)


def test_new_method_is_sized_from_its_own_params(config_dir):
    cfg = compose_with(config_dir, ["model=llama3_8b", "method=gptq_w3_g64",
                                    "hardware=mi210_64gb", "plan=true"])
    validate(cfg)                                   # a rocm tier and a new method: no errors
    (w3,) = candidate_rows(cfg, ["gptq_w3_g64"])
    (w4,) = candidate_rows(cfg, ["gptq_w4"])
    assert "error" not in w3 and "error" not in w4, (w3, w4)
    assert w3["storage"]["linear"] == {"bits": 3, "type": "int", "strategy": "group", "sym": True,
                                       "lm_head": False, "group": 64, "fallbacks": [32],
                                       "indivisible": "fallback"}
    # Llama-3-8B's widths (4096, 14336) are multiples of 128: every linear weight takes its
    # group. Per weight, w4 g128 stores 4 bits + a 16-bit scale per 128; w3 g64 stores
    # 3 bits + a 16-bit scale per 64; embeddings and lm_head are 16-bit in both.
    n = _linear_params(model_arch(cfg))
    per_weight_w4, per_weight_w3 = 4 / 8 + 2 / 128, 3 / 8 + 2 / 64
    assert w4["bytes"] - w3["bytes"] == pytest.approx(n * (per_weight_w4 - per_weight_w3), abs=8)
    assert w3["bpw"] < w4["bpw"]
    assert w3["runs_natively"] and w3["fit"]["fits"]
    assert "mi210_64gb" == w3["fit"]["hardware"]


def test_new_method_is_checked_against_a_tier_by_data(config_dir):
    cfg = compose_with(config_dir, ["model=llama3_8b", "method=gptq_w3_g64",
                                    "hardware=apple8gb", "plan=true"])
    with pytest.raises(ConfigErrors) as e:
        validate(cfg)
    msg = str(e.value)
    assert "gptq_w3_g64" in msg and "apple8gb" in msg and "compressed-tensors" in msg
    # the YAML's formats must name what its last stage writes (the stage module says which)
    wrong = compose_with(config_dir, ["model=llama3_8b", "method=gptq_w3_g64",
                                      "hardware=mi210_64gb", "plan=true", "method.formats=[gguf]"])
    with pytest.raises(ConfigErrors, match=r"method.formats.*'compressed-tensors'"):
        validate(wrong)


def test_new_tier_takes_any_backend_name_but_not_none(config_dir):
    cfg = compose_with(config_dir, ["model=llama3_8b", "method=q4_k_m", "hardware=mi210_64gb",
                                    "plan=true"])
    validate(cfg)
    bad = compose_with(config_dir, ["model=llama3_8b", "method=q4_k_m", "hardware=mi210_64gb",
                                    "plan=true", "hardware.backend=''"])
    with pytest.raises(ConfigErrors, match="hardware.backend"):
        validate(bad)


def test_cli_plans_both_from_a_config_dir(config_dir):
    """As a user runs it: method=auto over the new and a shipped method on the new tier."""
    r = subprocess.run([sys.executable, "-m", "slim", "--config-dir", str(config_dir),
                        "model=llama3_8b", "method=auto", "hardware=mi210_64gb",
                        "method.candidates=[gptq_w3_g64,gptq_w4,q4_k_m]", "plan=true"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines()
            if ln.split() and ln.split()[0] in ("gptq_w3_g64", "gptq_w4", "q4_k_m")}
    assert set(rows) == {"gptq_w3_g64", "gptq_w4", "q4_k_m"}, r.stdout
    for cols in rows.values():       # size and memory in one unit, and the fit
        assert cols[2] == "GiB" and cols[5] == "GiB" and cols[7] == "GiB" and cols[8] == "yes"
    assert float(rows["gptq_w3_g64"][1]) < float(rows["gptq_w4"][1])
    r = subprocess.run([sys.executable, "-m", "slim", "--config-dir", str(config_dir),
                        "model=llama3_8b", "method=gptq_w3_g64", "hardware=edge4gb", "plan=true"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "gptq_w3_g64" in r.stderr and "edge4gb" in r.stderr
