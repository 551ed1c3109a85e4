"""Group size per layer shape: fallback, ignore or refuse; compact targets for the recipe."""
from __future__ import annotations

import re

import pytest

from slim.errors import SlimError
from slim.compress.group_sizes import choose_group_sizes, compact_targets, group_report
from slim.compress.recipe import build_recipe
from slim.steps.llmc_oneshot import Params


class Lin:
    def __init__(self, n):
        self.in_features = n


def smol_layers(n_layers=2):
    """SmolLM2-135M shapes: 576 wide, MLP 1536."""
    out = []
    for i in range(n_layers):
        for name, cols in (("self_attn.q_proj", 576), ("self_attn.k_proj", 576),
                           ("self_attn.v_proj", 576), ("self_attn.o_proj", 576),
                           ("mlp.gate_proj", 576), ("mlp.up_proj", 576), ("mlp.down_proj", 1536)):
            out.append((f"model.layers.{i}.{name}", Lin(cols)))
    return out


def test_576_falls_back_to_64():
    chosen, ignored = choose_group_sizes(smol_layers(), 128, [64, 32], "fallback")
    assert not ignored
    assert chosen["model.layers.0.mlp.down_proj"] == 128
    assert chosen["model.layers.1.self_attn.q_proj"] == 64
    rep = group_report(chosen)
    assert rep == {"model.layers.*.mlp.down_proj": 128, "model.layers.*.mlp.gate_proj": 64,
                   "model.layers.*.mlp.up_proj": 64, "model.layers.*.self_attn.k_proj": 64,
                   "model.layers.*.self_attn.o_proj": 64, "model.layers.*.self_attn.q_proj": 64,
                   "model.layers.*.self_attn.v_proj": 64}


def test_ignore_policy_keeps_layers_16bit_with_reason():
    chosen, ignored = choose_group_sizes(smol_layers(), 128, [64, 32], "ignore")
    assert set(chosen) == {"model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"}
    why = ignored["model.layers.0.self_attn.q_proj"]
    assert "576" in why and "128" in why and "16-bit" in why


def test_no_fallback_divides():
    chosen, ignored = choose_group_sizes([("a.proj", Lin(100)), ("b.proj", Lin(256))],
                                         128, [64, 32], "fallback")
    assert chosen == {"b.proj": 128}
    assert "100" in ignored["a.proj"] and "64, 32" in ignored["a.proj"]


def test_error_policy_names_layers():
    with pytest.raises(SlimError) as e:
        choose_group_sizes(smol_layers(1), 128, [64], "error")
    assert e.value.reason == "group_size_indivisible"
    assert "model.layers.0.self_attn.q_proj (in_features 576)" in str(e.value)


def test_compact_targets_match_exactly():
    chosen, _ = choose_group_sizes(smol_layers(3), 128, [64, 32], "fallback")
    chosen["model.layers.2.mlp.gate_proj"] = 32  # one layer differs from its siblings
    targets = compact_targets(chosen)
    names = [n for n, _ in smol_layers(3)]
    for n, g in chosen.items():
        hits = [size for size, ts in targets.items() for t in ts if re.match(t[3:], n)]
        assert hits == [g], (n, hits)
    assert not any(re.match(t[3:], "model.layers.0.mlp.down_proj_x") for ts in targets.values()
                   for t in ts)
    assert len(names) == len(chosen)


def test_recipe_has_one_config_group_per_size():
    chosen, ignored = choose_group_sizes(smol_layers(), 128, [64], "fallback")
    [mod] = build_recipe(Params(algorithm="gptq", scheme="W4A16"), chosen, ignored)
    groups = mod["GPTQModifier"]["config_groups"]
    assert {g["weights"]["group_size"] for g in groups.values()} == {128, 64}
    assert mod["GPTQModifier"]["ignore"] == ["lm_head"]
    [awq, quant] = build_recipe(Params(algorithm="awq", scheme="W4A16_ASYM"), chosen, ignored)
    assert "AWQModifier" in awq and "config_groups" in quant["QuantizationModifier"]
    assert all(g["weights"]["symmetric"] is False
               for g in quant["QuantizationModifier"]["config_groups"].values())
