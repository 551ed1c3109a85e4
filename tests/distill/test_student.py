"""Structured pruning into a student: layer selection, MLP width, a folder transformers loads."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from slim.steps.base import check_params
from slim.steps.student import Params, build_student, choose_layers, spread
from tests.distill.tiny import small_llama


def test_layer_choices():
    assert choose_layers(Params(keep_layers="every_other"), 30) == list(range(0, 30, 2))
    assert choose_layers(Params(keep_layers=[5, 1]), 6) == [1, 5]
    assert choose_layers(Params(drop_fraction=0.5), 30) == spread(30, 15)
    assert spread(30, 15)[0] == 0 and spread(30, 15)[-1] == 29 and len(spread(30, 15)) == 15
    assert choose_layers(Params(keep_layers="every_other"), 2) == [0]
    infl = [0.9, 0.1, 0.5, 0.05, 0.7, 0.3]
    assert choose_layers(Params(drop_fraction=0.5, drop_by="importance"), 6, infl) == [0, 2, 4]


def test_param_errors_named():
    assert check_params("student", {"keep_layers": "half"}, "p")[0][0] == "p.keep_layers"
    assert check_params("student", {}, "p")[0][0] == "p"
    errs = dict(check_params("student", {"drop_fraction": 1.5, "mlp_keep": 0}, "p"))
    assert set(errs) == {"p.drop_fraction", "p.mlp_keep"}
    assert check_params("student", {"keep_layers": [0], "drop_fraction": 0.5}, "p")
    assert check_params("student", {"keep_layers": [0, 2], "mlp_keep": 0.5}, "p") == []


def test_keep_all_is_identity():
    m = small_llama()
    s, summ = build_student(m, Params(keep_layers=list(range(6))))
    ids = torch.randint(0, 320, (2, 16))
    with torch.no_grad():
        assert torch.equal(m(ids).logits, s.eval()(ids).logits)
    assert summ["params_after"] == summ["params_before"]


def test_drop_layers_and_shrink_mlp_roundtrip(tmp_path):
    from transformers import AutoModelForCausalLM
    m = small_llama()
    s, summ = build_student(m, Params(keep_layers=[0, 3, 5], mlp_keep=0.5, mlp_multiple=64))
    assert summ["kept_layers"] == [0, 3, 5] and summ["dropped_layers"] == [1, 2, 4]
    assert s.config.num_hidden_layers == 3 and s.config.intermediate_size == 128
    assert summ["params_after"] < summ["params_before"]
    # kept layers carry the parent's weights (attention untouched; MLP sliced by channel)
    assert torch.equal(s.model.layers[1].self_attn.q_proj.weight, m.model.layers[3].self_attn.q_proj.weight)
    assert [l.self_attn.layer_idx for l in s.model.layers] == [0, 1, 2]
    s.save_pretrained(tmp_path)
    back = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    ids = torch.randint(0, 320, (1, 12))
    with torch.no_grad():
        assert torch.allclose(back(ids).logits, s.eval()(ids).logits, atol=1e-5)
    out = back.generate(ids, max_new_tokens=4, do_sample=False)   # KV cache with renumbered layers
    assert out.shape == (1, 16)


def test_mlp_keeps_the_strongest_channels():
    m = small_llama(layers=2)
    with torch.no_grad():
        m.model.layers[0].mlp.down_proj.weight[:, 7] *= 100     # channel 7 clearly the strongest
        m.model.layers[0].mlp.down_proj.weight[:, 9] = 0        # channel 9 dead
    from slim.steps.student import mlp_channels
    ch = mlp_channels(m.model.layers[0], 0.25, 64).tolist()
    assert 7 in ch and 9 not in ch and len(ch) == 64


def test_importance_drop_and_qwen2_layer_types():
    m = small_llama(layers=4, model_type="qwen2")
    tokens = np.random.default_rng(0).integers(0, 320, (4, 32)).astype(np.int32)
    s, summ = build_student(m, Params(drop_fraction=0.5, drop_by="importance"), tokens)
    assert len(summ["block_influence"]) == 4 and summ["layers_after"] == 2
    infl = summ["block_influence"]
    assert set(summ["dropped_layers"]) == set(sorted(range(4), key=lambda k: infl[k])[:2])
    if getattr(m.config, "layer_types", None):
        assert len(s.config.layer_types) == 2


def test_no_layer_list_is_a_clear_error():
    from slim.errors import SlimError
    with pytest.raises(SlimError, match="do not exist"):
        build_student(small_llama(), Params(keep_layers=[0, 9]))


def test_16bit_parent_equals_float32_copy():
    """A bf16 parent is not widened to a float32 copy: block influence computes each module in
    float32 (slim.models.upcast), the student is cut from the bf16 weights; same influence,
    same layers, and the same weights once cast to the export dtype."""
    m16 = small_llama(layers=4).to(torch.bfloat16)
    m32 = small_llama(layers=4).to(torch.bfloat16).to(torch.float32)
    tokens = np.random.default_rng(0).integers(0, 320, (4, 32)).astype(np.int32)
    p = Params(drop_fraction=0.5, drop_by="importance", mlp_keep=0.5, mlp_multiple=64)
    a, sa = build_student(m16, p, tokens)
    b, sb = build_student(m32, p, tokens)
    assert sa == sb
    assert {q.dtype for q in a.parameters()} == {torch.bfloat16}
    assert {q.dtype for q in m16.parameters()} == {torch.bfloat16}    # narrowed back
    da, db = a.state_dict(), b.state_dict()
    for k in da:
        assert torch.equal(da[k].to(torch.float16), db[k].to(torch.float16)), k
