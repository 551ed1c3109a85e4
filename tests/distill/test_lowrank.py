"""Truncated-SVD factorisation: rank selection, exactness, a loadable dense reconstruction."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from slim.steps.base import StepContext, check_params
from slim.steps.lowrank import Params, choose_rank, factorise
from tests.distill.tiny import small_llama


def test_rank_rules():
    s = torch.tensor([4.0, 2.0, 1.0, 1.0])       # energies 16, 4, 1, 1 of 22
    assert choose_rank(s, 8, 8, Params(energy=0.7)) == 1
    assert choose_rank(s, 8, 8, Params(energy=0.9)) == 2
    assert choose_rank(s, 8, 8, Params(energy=0.99)) == 4
    assert choose_rank(s, 100, 300, Params(param_fraction=0.5)) == 4   # full rank caps it
    assert choose_rank(torch.ones(100), 100, 300, Params(param_fraction=0.5)) == 37
    assert choose_rank(s, 8, 8, Params(rank=3)) == 3


def test_param_errors():
    assert check_params("lowrank", {}, "p")[0][0] == "p"
    assert dict(check_params("lowrank", {"energy": 1.2}, "p")).keys() == {"p.energy"}
    assert check_params("lowrank", {"energy": 0.9, "rank": 4}, "p")
    assert dict(check_params("lowrank", {"rank": 4, "modules": ["("]}, "p")).keys() == {"p.modules[0]"}
    assert check_params("lowrank", {"energy": 0.9, "whiten": "activation"}, "p") == []


def test_low_rank_weight_recovered_exactly():
    m = small_llama(layers=1)
    lin = m.model.layers[0].mlp.up_proj
    with torch.no_grad():
        a, b = torch.randn(256, 3), torch.randn(3, 64)
        lin.weight.copy_(a @ b)
        ref = lin.weight.clone()
    _, layers = factorise(m, Params(energy=0.999, modules=[r"mlp\.up_proj$"]))
    rec = layers[0]
    assert rec["rank"] == 3 and rec["factored"] and rec["params_factored"] == 3 * (256 + 64)
    assert torch.allclose(lin.weight, ref, atol=1e-4)


def test_not_smaller_stays_dense():
    m = small_llama(layers=1)
    before = m.model.layers[0].self_attn.q_proj.weight.clone()
    _, layers = factorise(m, Params(rank=40, modules=[r"self_attn\.q_proj$"]))   # 40*(128) > 64*64
    assert not layers[0]["factored"] and layers[0]["params_factored"] == 64 * 64
    assert torch.equal(m.model.layers[0].self_attn.q_proj.weight, before)


def test_step_writes_loadable_model_and_counts(tmp_path):
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models

    src = tmp_path / "parent"
    m = small_llama(layers=2)
    m.save_pretrained(src)
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1},
                                                                              unk_token="[UNK]")))
    tok.save_pretrained(src)
    (tmp_path / "cal").mkdir()
    np.save(tmp_path / "cal" / "tokens.npy",
            np.random.default_rng(0).integers(0, 320, (4, 32)).astype(np.int32))
    out = tmp_path / "out"
    out.mkdir()
    from slim.steps import lowrank
    p = Params(param_fraction=0.5, whiten="activation", calibration_samples=2)
    ctx = StepContext("lowrank:0", "lowrank", p, {}, {"model": src, "calibration": tmp_path / "cal"},
                      out, 1, log=lambda s: None)
    lowrank.run(ctx)
    rep = json.loads((out / "lowrank.json").read_text())
    assert rep["layers_matched"] == 14 and rep["layers_factored"] == 14
    assert rep["params_after"] < rep["params_before"] == sum(q.numel() for q in m.parameters())
    assert abs(rep["target_params_after"] / rep["target_params_before"] - 0.5) < 0.05
    back = AutoModelForCausalLM.from_pretrained(out / "model")
    assert back.config.num_hidden_layers == 2
    assert (out / "factors.safetensors").is_file()
    from safetensors import safe_open
    with safe_open(str(out / "factors.safetensors"), "pt") as f:
        a = f.get_tensor("model.layers.0.mlp.up_proj.A").float()
        b = f.get_tensor("model.layers.0.mlp.up_proj.B").float()
    w = back.model.layers[0].mlp.up_proj.weight.float()
    assert torch.allclose(a @ b, w, atol=2e-2)


def test_methods_validate_on_safetensors_tiers_only():
    from slim.config.validate import validate
    from slim.errors import ConfigErrors
    from tests.conftest import TINY, compose
    for m in ("lowrank_e90", "lowrank_e95", "lowrank_p50"):
        validate(compose(TINY + [f"method={m}", "hardware=cpu16gb"]))
    with pytest.raises(ConfigErrors, match="safetensors"):
        validate(compose(TINY + ["method=lowrank_e90", "hardware=edge4gb"]))


def test_list_override_reaches_the_step_as_json():
    """Hydra hands lists over as ListConfig; the plan must carry plain JSON (the step spec)."""
    from slim.config.validate import validate
    from slim.plan import Planner
    from tests.conftest import TINY, compose
    cfg = compose(TINY + ["method=lowrank_e90", "hardware=cpu16gb",
                          "+method.stages.0.params.modules=[mlp\\.down_proj$]"])
    validate(cfg)
    step = Planner(cfg).build().steps["lowrank:0"]
    assert step.params["modules"] == ["mlp\\.down_proj$"]
    json.dumps(step.params)
    bad = compose(TINY + ["method=lowrank_e90", "hardware=cpu16gb",
                          "+method.stages.0.params.modules=[\"(\"]"])
    with pytest.raises(Exception, match=r"method.stages\[0\].params.modules\[0\]"):
        validate(bad)


def test_calibration_is_checked_for_lowrank():
    from slim.config.validate import validate
    from slim.errors import ConfigErrors
    from tests.conftest import TINY, compose
    cfg = compose(TINY + ["method=lowrank_e90", "hardware=cpu16gb",
                          "calibration.paths=[no/such/file.txt]"])
    with pytest.raises(ConfigErrors, match=r"calibration.paths\[0\]"):
        validate(cfg)


@pytest.mark.slow
def test_tiny_build_reports_param_counts(tmp_path):
    from slim.build import run_build
    from tests.conftest import TINY, compose
    out = run_build(compose(TINY + ["method=lowrank_p50", "hardware=cpu16gb",
                                    f"paths.builds={tmp_path}"]), quiet=True)
    r = json.loads((out / "report.json").read_text())
    lr = r["artifact"]["lowrank"]
    assert lr["params_after"] < lr["params_before"] == lr["params_on_disk"]
    assert lr["layers_factored"] == lr["layers_matched"] > 0
    assert r["metrics"]["fidelity"]["kld_mean"] > 0          # a lossy lever, measured
    md = (out / "report.md").read_text()
    assert "## Low-rank factorisation" in md and f"{lr['params_after'] / 1e6:.2f}M" in md


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16bit_parent_equals_float32_copy(tmp_path, dtype):
    """A bf16 parent is factorised without a float32 copy (whitening forward per module in
    float32, SVD per layer): model and factors bit-identical to the float32 copy's."""
    from safetensors.torch import load_file
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models

    from slim.steps import lowrank
    m = small_llama(layers=2).to(torch.bfloat16)
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1},
                                                                              unk_token="[UNK]")))
    (tmp_path / "cal").mkdir()
    np.save(tmp_path / "cal" / "tokens.npy",
            np.random.default_rng(0).integers(0, 320, (4, 32)).astype(np.int32))
    got = {}
    for src_dtype in ("bfloat16", "float32"):
        src = tmp_path / src_dtype
        m.to(getattr(torch, src_dtype)).save_pretrained(src)
        tok.save_pretrained(src)
        out = tmp_path / f"out-{src_dtype}"
        out.mkdir()
        p = Params(param_fraction=0.5, whiten="activation", calibration_samples=2, dtype=dtype)
        ctx = StepContext("lowrank:0", "lowrank", p, {},
                          {"model": src, "calibration": tmp_path / "cal"}, out, 1,
                          log=lambda s: None)
        lowrank.run(ctx)
        got[src_dtype] = (load_file(out / "model" / "model.safetensors"),
                          load_file(out / "factors.safetensors"),
                          json.loads((out / "lowrank.json").read_text())["layers"])
    (wa, fa, la), (wb, fb, lb) = got["bfloat16"], got["float32"]
    assert la == lb
    for x, y in ((wa, wb), (fa, fb)):
        assert set(x) == set(y)
        for k in x:
            assert x[k].dtype == y[k].dtype == getattr(torch, dtype), k
            assert torch.equal(x[k], y[k]), k
