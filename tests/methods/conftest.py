"""Helpers for the method tests: build only the steps an artifact needs (no evaluation)."""
from __future__ import annotations

from tests.conftest import TINY, compose

#: a tier that runs every format and capability these methods declare
ALL_CAPS = "hardware=h100_80gb"


def stage_cfg(method: str, extra=()):
    return compose(TINY + [f"method={method}", ALL_CAPS, *extra])


def build_stages(method: str, extra=()):
    """Run the steps the method's artifact depends on; return (artifact path, plan, resolved)."""
    from slim.build import open_store
    from slim.config.validate import validate
    from slim.executor import EventLog, Executor
    from slim.plan import Planner, input_path

    cfg = stage_cfg(method, extra)
    validate(cfg)
    plan = Planner(cfg).build()
    from slim.plan import ancestors
    keep = ancestors(plan.steps, [plan.artifact.step])
    ex = Executor(open_store(cfg), EventLog(None), cfg.threads)
    resolved = ex.run({k: v for k, v in plan.steps.items() if k in keep})
    return input_path(resolved, plan.artifact), plan, resolved


def generate(folder, n: int = 6) -> str:
    """Load with plain transformers and greedy-generate a few tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    tok = AutoTokenizer.from_pretrained(str(folder))
    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=n, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + n
    return tok.decode(out[0][ids["input_ids"].shape[1]:])
