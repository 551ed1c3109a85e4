"""lm-eval tasks through lm-eval's own harness (HFLM, or our in-process llama.cpp LM)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

VERSION = 1
LIBS = ("lm-eval", "llama-cpp-python", "torch", "transformers")


@dataclass
class Params:
    tasks: list = field(default_factory=list)
    limit: Optional[int] = None
    model_file: str = ""


def run(ctx):
    from slim.lmeval.run import run_lm_eval

    p = ctx.params
    tasks = list(p.tasks) + [str(v) for k, v in sorted(ctx.inputs.items()) if k.startswith("task")]
    model = ctx.inputs["model"] / p.model_file if p.model_file else ctx.inputs["model"]
    res = run_lm_eval(str(model), tasks, p.limit, threads=ctx.threads)
    ctx.write_json("lm_eval.json", res)
