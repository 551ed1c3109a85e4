"""Method configs and stage params: checked before any work, with the key and the reason."""
from __future__ import annotations

import pytest

from slim.steps.base import check_params
from tests.conftest import compose
from tests.methods.conftest import stage_cfg

METHODS = ["gptq_w4", "awq_w4", "fp8_dynamic", "w8a8_smoothquant", "autoround_w4", "wanda50",
           "sparsegpt50", "sparsegpt_2of4", "magnitude50", "wanda50_q4_k_m", "sparsegpt50_q4_k_m"]


@pytest.mark.parametrize("method", METHODS)
def test_method_configs_validate(method):
    from slim.config.validate import validate
    validate(stage_cfg(method))


def _errs(**params):
    return dict(check_params("llmc_oneshot", params, "p"))


@pytest.mark.parametrize("params,key,text", [
    ({"algorithm": "gptx", "scheme": "W4A16"}, "p.algorithm", "unknown algorithm"),
    ({"algorithm": "gptq"}, "p.scheme", "needs a quantization scheme"),
    ({"algorithm": "gptq", "scheme": "W4A15"}, "p.scheme", "unknown scheme"),
    ({"algorithm": "wanda", "sparsity": 1.5}, "p.sparsity", "fraction"),
    ({"algorithm": "wanda"}, "p.sparsity", "fraction"),
    ({"algorithm": "sparsegpt", "sparsity": 0.6, "mask_structure": "2:4"}, "p.sparsity", "2:4"),
    ({"algorithm": "sparsegpt", "sparsity": 0.5, "mask_structure": "4:2"}, "p.mask_structure",
     "0 < N < M"),
    ({"algorithm": "wanda", "sparsity": 0.5, "scheme": "W4A16"}, "p.scheme", "prunes"),
    ({"algorithm": "awq", "scheme": "W8A8"}, "p.scheme", "weight-only"),
    ({"algorithm": "awq", "scheme": "W4A16", "n_grid": 2}, "p.n_grid", "at least 3"),
    ({"algorithm": "gptq", "scheme": "W8A8", "group_size": 64}, "p.group_size", "per channel"),
    ({"algorithm": "gptq", "scheme": "W4A16", "indivisible": "pad"}, "p.indivisible", "fallback"),
    ({"algorithm": "gptq", "scheme": "W4A16", "export_dtype": "float32"}, "p.export_dtype", "auto"),
])
def test_bad_params_named(params, key, text):
    errs = _errs(**params)
    assert key in errs and text in errs[key], errs


def test_unknown_param_rejected():
    errs = _errs(algorithm="gptq", scheme="W4A16", groupsize=64)
    assert "p.groupsize" in errs and "unknown param" in errs["p.groupsize"]


def test_autoround_params():
    errs = dict(check_params("autoround", {"scheme": "W4A8", "iters": -1}, "p"))
    assert "p.scheme" in errs and "p.iters" in errs


def test_bad_stage_param_fails_at_config_time():
    from slim.config.validate import validate
    from slim.errors import ConfigErrors
    cfg = compose(["model=tiny_llama", "method=gptq_w4", "hardware=h100_80gb",
                   "method.stages.0.params.scheme=W4A15"])
    with pytest.raises(ConfigErrors) as e:
        validate(cfg)
    assert "method.stages[0].params.scheme" in str(e.value)


def test_static_scheme_list_matches_compressed_tensors():
    """Our static list (no torch import at validation) must name real presets."""
    from compressed_tensors.quantization.quant_scheme import PRESET_SCHEMES

    from slim.steps import autoround, llmc_oneshot
    assert set(llmc_oneshot.SCHEMES) <= set(PRESET_SCHEMES)
    assert set(autoround.SCHEMES) <= set(PRESET_SCHEMES)
    for name, g in llmc_oneshot.GROUP_SCHEMES.items():
        w = PRESET_SCHEMES[name]["weights"]
        assert w.strategy == "group" and w.group_size == g, name
    for name in set(llmc_oneshot.SCHEMES) - set(llmc_oneshot.GROUP_SCHEMES):
        assert PRESET_SCHEMES[name]["weights"].strategy != "group", name


def test_calibration_only_where_needed():
    from slim.steps.llmc_oneshot import Params
    assert not Params(algorithm="rtn", scheme="FP8_DYNAMIC").needs_calibration
    assert not Params(algorithm="magnitude", sparsity=0.5).needs_calibration
    assert Params(algorithm="rtn", scheme="FP8").needs_calibration
    assert Params(algorithm="gptq", scheme="W4A16").needs_calibration
    assert Params(algorithm="wanda", sparsity=0.5).needs_calibration


def test_param_types_checked():
    """A value of the wrong type for a scalar field is named, whatever the step's own checks."""
    errs = dict(check_params("quantize_gguf", {"type": "Q4_K_M", "imatrix": "abc"}, "p"))
    assert errs == {"p.imatrix": "must be true or false, got 'abc'"}
    errs = dict(check_params("probe_run", {"batch_size": "8", "max_items": None, "max_tokens": 3.5},
                             "p"))
    assert set(errs) == {"p.batch_size", "p.max_tokens"} and "an integer" in errs["p.max_tokens"]
    assert check_params("quantize_gguf", {"type": "Q4_K_M", "imatrix": False}, "p") == []


def test_bad_stage_param_type_fails_at_config_time():
    from slim.config.validate import validate
    from slim.errors import ConfigErrors
    cfg = compose(["model=tiny_llama", "method=q4_k_m", "hardware=apple8gb",
                   "method.stages.0.params.imatrix=abc"])
    with pytest.raises(ConfigErrors) as e:
        validate(cfg)
    assert "method.stages[0].params.imatrix" in str(e.value) and "true or false" in str(e.value)
