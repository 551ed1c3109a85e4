"""method=fit: the allocator's math, ggml's error measurement, the weight-free estimate and a
tiny end-to-end build whose file fits its byte budget with the allocated types."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from slim.compress.gguf_allocate import allocate, greedy, pareto
from slim.errors import SlimError
from tests.conftest import TINY, compose


def _instance(seed: int, n: int = 12):
    rng = random.Random(seed)
    out = {}
    for i in range(n):
        size = rng.choice([256, 512, 1024])
        opts = {}
        for bits, t in ((8.5, "Q8_0"), (6.5, "Q6_K"), (5.5, "Q5_0"), (4.5, "Q4_0"), (3.4, "Q3_K"),
                        (2.6, "Q2_K")):
            # error roughly 4^-bits, scaled per tensor, with noise (not always convex)
            opts[t] = (int(size * bits), rng.uniform(0.5, 2.0) * 4.0 ** -bits * size)
        out[f"t{i}"] = opts
    return out


def _cost(inst, types):
    return sum(inst[n][t][1] for n, t in types.items()), sum(inst[n][t][0] for n, t in types.items())


def test_budget_respected_and_monotone():
    inst = _instance(0)
    lo = sum(min(b for b, _ in o.values()) for o in inst.values())
    hi = sum(max(b for b, _ in o.values()) for o in inst.values())
    prev = None
    for budget in np.linspace(lo, hi, 15).astype(int):
        a = allocate(inst, int(budget) + 100, fixed=100)
        cost, size = _cost(inst, a.types)
        assert size + 100 == a.bytes <= budget + 100
        assert a.cost == pytest.approx(cost)
        assert a.cost <= a.greedy_cost + 1e-12          # exact never worse than the hull greedy
        if prev is not None:
            assert a.cost <= prev + 1e-12                # more bytes never cost quality
        prev = a.cost
    # all the bytes in the world: every tensor at its least-cost option
    a = allocate(inst, hi * 2)
    assert all(a.types[n] == min(o, key=lambda t: o[t][1]) for n, o in inst.items())


def test_exact_beats_or_equals_brute_force_on_small_instances():
    import itertools
    for seed in range(5):
        inst = _instance(seed, n=4)
        names = sorted(inst)
        lo = sum(min(b for b, _ in o.values()) for o in inst.values())
        budget = lo + 1500
        best = min((c for combo in itertools.product(*(sorted(inst[n]) for n in names))
                    for c, s in [_cost(inst, dict(zip(names, combo)))] if s <= budget))
        assert allocate(inst, budget).cost == pytest.approx(best)


def test_infeasible_budget_names_the_key():
    inst = _instance(1)
    lo = sum(min(b for b, _ in o.values()) for o in inst.values())
    with pytest.raises(SlimError, match="method.target_bytes"):
        allocate(inst, lo + 10, fixed=11)


def test_pareto_and_greedy():
    assert pareto({"a": (10, 1.0), "b": (12, 2.0), "c": (8, 3.0)}) == {"c": (8, 3.0), "a": (10, 1.0)}
    inst = _instance(2)
    lo = sum(min(b for b, _ in o.values()) for o in inst.values())
    g = greedy({n: pareto(o) for n, o in inst.items()}, lo + 3000)
    assert _cost(inst, g)[1] <= lo + 3000


def test_ggml_roundtrip_is_the_gguf_dequantizer_and_row_rules_hold():
    import ctypes

    import gguf

    from slim.compress import gguf_error as ge
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 512)).astype(np.float32)
    lib = ge._ggml()
    t = int(gguf.GGMLQuantizationType.Q4_K)
    rs = lib.ggml_row_size(t, 512)
    buf = np.empty(4 * rs, np.uint8)
    lib.ggml_quantize_chunk(t, w.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                            buf.ctypes.data_as(ctypes.c_void_p), 0, 4, 512, None)
    ref = gguf.quants.dequantize(buf.reshape(4, rs), gguf.GGMLQuantizationType.Q4_K)
    assert np.array_equal(ge.roundtrip(w, "Q4_K"), ref)
    # 576-wide rows (SmolLM2): no 256-block type; 32-block types are legal
    assert not ge.legal("Q4_K", 576, True) and not ge.legal("IQ4_XS", 576, True)
    assert ge.legal("IQ4_NL", 576, True) and ge.legal("Q5_0", 576, False)
    assert not ge.legal("IQ2_XS", 512, False)      # needs an importance matrix
    im = rng.random(512).astype(np.float32) + 0.1
    m = ge.measure_tensor(rng.standard_normal((64, 512)).astype(np.float32), im,
                          ["Q8_0", "Q6_K", "Q4_K", "Q2_K"])
    errs = [m["types"][t]["error"] for t in ("Q8_0", "Q6_K", "Q4_K", "Q2_K")]
    assert errs == sorted(errs) and errs[0] > 0
    assert m["types"]["Q4_K"]["bytes"] == 64 * 2 * 144
    # sampled rows estimate the whole tensor's error
    big = rng.standard_normal((2048, 256)).astype(np.float32)
    full = ge.measure_tensor(big, None, ["Q4_K"])["types"]["Q4_K"]["error"]
    part = ge.measure_tensor(big, None, ["Q4_K"], max_rows=512)
    assert part["sampled_rows"] == 512
    assert part["types"]["Q4_K"]["error"] == pytest.approx(full, rel=0.1)


def test_weight_free_allocation_fits_the_tier():
    from slim.planview import candidate_rows
    cfg = compose(["model=llama3_8b", "method=fit", "hardware=apple8gb", "plan=true"])
    (row,) = candidate_rows(cfg, ["fit"])
    a = row["allocation"]
    assert row["fit"]["fits"] and row["bytes"] <= a["budget"]
    assert a["budget"] > 0.9 * row["bytes"]         # it uses the room it has
    assert set(a["by_layer"]) >= {"attn_v", "ffn_down", "token_embd", "output"}
    assert len(a["by_layer"]["attn_q"]) == 32
    # a larger tier gets a larger file
    cfg16 = compose(["model=llama3_8b", "method=fit", "hardware=apple16gb", "plan=true"])
    assert candidate_rows(cfg16, ["fit"])[0]["bytes"] > row["bytes"]


def test_plan_refuses_an_impossible_target_before_work():
    from slim.plan import Planner
    cfg = compose(TINY + ["method=fit", "method.target_bytes=1000"])
    with pytest.raises(SlimError, match="method.target_bytes"):
        Planner(cfg).build()
    cfg = compose(TINY + ["method=fit", "method.target_bytes=-5"])
    with pytest.raises(SlimError, match="method.target_bytes"):
        Planner(cfg).build()


def test_tiny_fit_build_fits_its_budget(tiny_builds):
    from slim.build import run_build
    target = 6_900_000
    cfg = compose(TINY + ["method=fit", f"method.target_bytes={target}", "probes.categories=[]",
                          f"paths.builds={tiny_builds}", "threads=1"])
    out = run_build(cfg, quiet=True)
    rep = json.loads((out / "report.json").read_text())
    a = rep["artifact"]["allocation"]
    assert (out / "model.gguf").stat().st_size == rep["artifact"]["bytes"] <= target
    assert a["within_budget"] and a["types_as_allocated"]
    assert a["predicted_bytes"] <= target
    assert rep["artifact"]["bytes"] <= a["predicted_bytes"]   # the margin is kept, not exceeded
    assert len(set(rep["artifact"]["tensor_types"]) - {"F32"}) >= 2   # a real mix
    assert "## Allocation (method=fit)" in (out / "report.md").read_text()


def test_tensor_type_overrides_from_the_command_line_plan():
    """A hand-made mix as Hydra overrides (what bench/fit.py builds beside the fit)."""
    from slim.build import open_store
    from slim.executor import EventLog, Executor
    from slim.plan import Planner
    cfg = compose(TINY + ["method=q4_k_m",
                          "+method.stages.0.params.tensor_types={attn_q:IQ4_NL,attn_v:Q8_0}"])
    plan = Planner(cfg).build()
    q = plan.steps["quantize_gguf:0"]
    assert q.params["tensor_types"] == {"attn_q": "IQ4_NL", "attn_v": "Q8_0"}
    Executor(open_store(cfg), EventLog(None), 1).resolve(plan.steps)   # keys are computable


def test_sensitivity_of_kinds_the_calibration_lacks():
    from slim.compress.fit_cost import kind, weight_of
    s = {"attn_q": 0.02, "attn_k": 0.03, "attn_v": 0.1, "ffn_down": 0.2, "ffn_up": 0.1,
         "token_embd": 7.0}
    assert kind("blk.3.attn_v.weight") == "attn_v" and kind("output.weight") == "output"
    assert weight_of("output", s) == 7.0                 # the tied embedding's output role
    assert weight_of("ffn_down_exps", s) == 0.2
    assert weight_of("attn_qkv", s) == 0.1
    assert weight_of("ffn_gate", s) == 0.1               # median of the block kinds
    assert weight_of("ffn_gate", {**s, "*": 1.5}) == 1.5


def test_a_quantized_kv_cache_leaves_the_fit_more_room():
    from slim.planview import candidate_rows
    rows = {kv: candidate_rows(compose(["model=llama3_8b", "method=fit", "hardware=apple8gb",
                                         "plan=true", f"kv_cache={kv}"]), ["fit"])[0]
            for kv in ("f16", "q8_0")}
    f16, q8 = rows["f16"], rows["q8_0"]
    saved = f16["fit"]["kv_cache_bytes"] - q8["fit"]["kv_cache_bytes"]
    assert saved > 0 and q8["fit"]["fits"] and f16["fit"]["fits"]
    assert q8["allocation"]["budget"] - f16["allocation"]["budget"] == saved
    assert q8["bytes"] > f16["bytes"]
