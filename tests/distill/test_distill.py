"""GKD distillation: params, data, cache sharing between compositions, and that it works.

The slow test trains the tiny model's half-depth student for a few dozen steps and
checks that the loss goes down and that the distilled student is closer (KLD) to the
teacher than the same student before distillation, on calibration windows held out
of training.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from slim.steps.base import check_params
from slim.steps.distill import Params, PromptCompletionCollator, split_windows
from tests.conftest import TINY, compose

# tiny, fast distillation settings for tests (same overrides for both methods)
FAST = [f"method.stages.1.params.{k}={v}" for k, v in {
    "max_steps": 24, "batch_size": 4, "prompt_tokens": 16, "completion_tokens": 16,
    "max_new_tokens": 16, "learning_rate": 1e-3, "warmup_steps": 0, "eval_windows": 4}.items()]


def test_param_errors_named():
    errs = dict(check_params("distill", {"lmbda": 2, "beta": -1, "max_steps": 0,
                                         "lr_scheduler": "warm"}, "s"))
    assert set(errs) == {"s.lmbda", "s.beta", "s.max_steps", "s.lr_scheduler"}
    assert check_params("distill", {"tempo": 1}, "s")[0][0] == "s.tempo"
    assert check_params("distill", {}, "s") == []


def test_windows_split_into_prompt_completion_and_holdout():
    toks = np.arange(6 * 64, dtype=np.int32).reshape(6, 64)
    ex, held = split_windows(toks, Params(prompt_tokens=16, completion_tokens=16, eval_windows=2))
    assert len(held) == 2 and held[0][0] == 4 * 64
    assert len(ex) == 4 * 2 and ex[0] == (list(range(16)), list(range(16, 32)))
    held_ids = set(held.ravel().tolist())
    assert not any(set(p + c) & held_ids for p, c in ex)
    batch = PromptCompletionCollator()([{"prompt": p, "completion": c} for p, c in ex[:3]])
    assert batch["input_ids"].shape == (3, 32) and batch["prompts"].shape == (3, 16)
    assert (batch["labels"][:, :16] == -100).all() and (batch["labels"][:, 16:] >= 0).all()
    from slim.errors import SlimError
    with pytest.raises(SlimError, match="exceeds the calibration windows"):
        split_windows(toks, Params(prompt_tokens=48, completion_tokens=48))


def _plan(method, extra=()):
    from slim.plan import Planner
    cfg = compose(TINY + [f"method={method}"] + FAST + list(extra))
    planner = Planner(cfg)
    return cfg, planner, planner.build()


def _resolve(cfg, plan):
    from slim.build import open_store
    from slim.executor import EventLog, Executor
    ex = Executor(open_store(cfg), EventLog(None), threads=2)
    return {r.step.id: r for r in ex.resolve(plan.steps)}, ex


def test_composed_method_shares_the_distill_step():
    cfg_a, _, plan_a = _plan("distill_half")
    cfg_b, _, plan_b = _plan("distill_half_q4_k_m")
    ra, _ = _resolve(cfg_a, plan_a)
    rb, _ = _resolve(cfg_b, plan_b)
    for sid in ("student:0", "distill:1"):
        assert ra[sid].key == rb[sid].key, sid
    assert ra["quantize_gguf:2"].key != rb["quantize_gguf:2"].key
    # the distill stage is in both methods' YAML with the same params (a test against drift)
    a = [dict(s.params) for s in compose(TINY + ["method=distill_half"]).method.stages[:2]]
    b = [dict(s.params) for s in compose(TINY + ["method=distill_half_q4_k_m"]).method.stages[:2]]
    assert a == b


def test_undistilled_pipeline_replays_later_stages():
    _, planner, plan = _plan("distill_half_q4_k_m")
    art = plan.baselines["undistilled"]
    assert art.step == "quantize_gguf:2~undistilled" and art.format == "gguf"
    q = planner.steps[art.step]
    assert q.params == planner.steps["quantize_gguf:2"].params
    assert planner.steps[q.deps["f16"]].deps == {"model": "student:0"}
    assert planner.steps[q.deps["imatrix"]].deps["model"] == "student:0"
    # the real pipeline is untouched
    assert plan.artifact.step == "quantize_gguf:2"
    assert planner.steps["quantize_gguf:2"].deps["f16"] == "convert_gguf:distill:1"
    # and the undistilled student is evaluated like the child, against the same reference
    fu, fc = planner.steps["fidelity:undistilled"], planner.steps["fidelity:child"]
    assert fu.deps == {"reference": fc.deps["reference"], "parent": fc.deps["parent"],
                       "model": art.step}
    # the same probe items (the probe_suite step) as the child
    assert planner.steps["probes:undistilled"].deps == {
        "model": art.step, "probe_data": planner.steps["probes:child"].deps["probe_data"]}
    assert planner.steps["probes:undistilled"].params == planner.steps["probes:child"].params


def test_methods_without_distill_have_no_baseline():
    from slim.plan import Planner
    plan = Planner(compose(TINY + ["method=q4_k_m"])).build()
    assert plan.baselines == {} and "fidelity:undistilled" not in plan.steps


def test_validation_accepts_methods_on_their_tiers():
    from slim.config.validate import validate
    validate(compose(TINY + ["method=distill_half", "hardware=edge4gb"]))
    validate(compose(TINY + ["method=distill_half_q4_k_m", "hardware=edge4gb"]))


def _kld(parent, child, windows):
    import torch

    from slim.metrics.fidelity import token_stats
    out = []
    with torch.no_grad():
        for w in windows:
            ids = torch.from_numpy(w[None].astype(np.int64))
            p = parent(ids).logits[0, :-1].double().numpy()
            c = child(ids).logits[0, :-1].double().numpy()
            out.append(token_stats(p, c, w[1:].astype(np.int64))["kld"])
    return float(np.concatenate(out).mean())


@pytest.mark.slow
def test_distillation_lowers_loss_and_kld():
    from slim.models.hf_io import load_causal_lm
    cfg, _, plan = _plan("distill_half")
    need = {"import_parent", "calibration_set", "student:0", "distill:1"}
    resolved, ex = _resolve(cfg, plan)
    done = ex.run({k: v for k, v in plan.steps.items() if k in need})
    data = {k: done[k].entry.data for k in need}

    rep = json.loads((data["distill:1"] / "distill.json").read_text())
    losses = [s["loss"] for s in rep["steps"]]
    assert len(losses) == 24 and all(np.isfinite(losses))
    third = len(losses) // 3
    assert np.mean(losses[-third:]) < np.mean(losses[:third]), losses
    assert 0 < rep["on_policy_steps"] < 24          # lmbda=0.5 mixes both kinds of batch
    for m in rep["loss_by_mode"].values():
        assert m["loss_last"] < m["loss_first"], rep["loss_by_mode"]
    assert rep["kld_holdout_after"] < rep["kld_holdout_before"]
    assert rep["params_student"] < rep["params_teacher"]

    # independent check with slim.metrics.fidelity on the held-out calibration windows
    tokens = np.load(data["calibration_set"] / "tokens.npy")
    held = tokens[-rep["holdout_windows"]:]
    teacher = load_causal_lm(data["import_parent"]).eval()
    before = load_causal_lm(data["student:0"] / "model").eval()
    after = load_causal_lm(data["distill:1"] / "model").eval()
    kld_before, kld_after = _kld(teacher, before, held), _kld(teacher, after, held)
    assert kld_after < kld_before, (kld_before, kld_after)
    print(f"tiny: loss {np.mean(losses[:third]):.5f} -> {np.mean(losses[-third:]):.5f}; "
          f"KLD undistilled {kld_before:.5f}, distilled {kld_after:.5f}")

    # the composed method finds the distillation already in the cache
    cfg_b, _, plan_b = _plan("distill_half_q4_k_m")
    rb, _ = _resolve(cfg_b, plan_b)
    assert rb["distill:1"].cached and rb["student:0"].cached
    assert rb["distill:1"].key == done["distill:1"].key


@pytest.mark.slow
def test_report_compares_teacher_undistilled_and_distilled(tmp_path):
    """Full tiny build of the composed method: the report carries the comparison row."""
    from slim.build import run_build
    cfg = compose(TINY + ["method=distill_half_q4_k_m", f"paths.builds={tmp_path}"] + FAST)
    out = run_build(cfg, quiet=True)
    r = json.loads((out / "report.json").read_text())
    d = r["metrics"]["distillation"]
    u = d["undistilled"]
    assert u["step"] == "quantize_gguf:2~undistilled" and u["format"] == "gguf"
    fu, fc = u["fidelity"], r["metrics"]["fidelity"]
    assert fu["tokens"] == fc["tokens"]
    assert fc["kld_mean"] < fu["kld_mean"], (fc["kld_mean"], fu["kld_mean"])
    assert set(u["probes"]["categories"]) == set(r["metrics"]["probes"]["categories"])
    assert d["teacher"]["n_params"] > d["distilled"]["n_params"] == u["n_params"]
    assert d["teacher"]["bytes"] > d["distilled"]["bytes"] and u["bytes"] == d["distilled"]["bytes"]
    assert d["kld_gain"]["tokens"] == fc["tokens"]
    assert abs(d["kld_gain"]["mean"] - (fu["kld_mean"] - fc["kld_mean"])) < 1e-9
    assert len(d["loss_curve"]) == 24 and d["training"]["kld_holdout_after"] < \
        d["training"]["kld_holdout_before"]
    md = (out / "report.md").read_text()
    assert "| | teacher (parent) | undistilled student | distilled student |" in md
    for cat in r["metrics"]["probes"]["categories"]:
        assert f"| probe {cat} " in md
    steps = {s["id"]: s for s in r["steps"]}
    assert {"fidelity:undistilled", "probes:undistilled", "distill:1"} <= set(steps)


def test_markdown_puts_the_three_models_in_their_columns():
    from slim.report.compare import render_distillation
    fid = {"ppl_parent": 10.0, "ppl_child": 14.0, "kld_mean": 0.5, "top1_agreement": 0.7,
           "runtime_child": "llama.cpp"}
    fu = {"ppl_child": 30.0, "kld_mean": 1.5, "top1_agreement": 0.4}
    cat = {"n": 8, "parent_score": 0.75}
    r = {"metrics": {"fidelity": fid, "probes": {"categories": {"behavioral/x": {
            **cat, "child_score": 0.5}}}, "distillation": {
        "teacher": {"n_params": 134_000_000, "bytes": 270e6},
        "undistilled": {"step": "quantize_gguf:2~undistilled", "n_params": 81_000_000,
                        "bytes": 160e6, "fidelity": fu,
                        "probes": {"categories": {"behavioral/x": {**cat, "child_score": 0.25}}}},
        "distilled": {"format": "gguf", "n_params": 81_000_000, "bytes": 160e6},
        "kld_gain": {"mean": 1.0, "stderr": 0.1, "tokens": 100},
        "student": {}, "training": {"engine": "gkd", "settings": {}}, "loss_curve": []}}}
    md = "\n".join(render_distillation(r))
    assert "| PPL | 10.000 | 30.000 | 14.000 |" in md
    assert "| mean KLD to teacher | 0 | 1.5000 | 0.5000 |" in md
    assert "| probe behavioral/x (n=8) | 0.75 | 0.25 | 0.50 |" in md
    assert "| parameters | 134.0M | 81.0M | 81.0M |" in md
    assert render_distillation({"metrics": {}}) == []
