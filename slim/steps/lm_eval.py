"""lm-eval tasks through lm-eval's own harness (HFLM, or our in-process llama.cpp LM)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

VERSION = 2  # 2: a task file runs alone (v1 ran every task YAML in its folder)
LIBS = ("lm-eval", "llama-cpp-python", "torch", "transformers")


@dataclass
class Params:
    tasks: list = field(default_factory=list)
    limit: Optional[int] = None
    model_file: str = ""
    #: input name -> task YAML inside that input folder (the folder is the input so its data
    #: files are in the key; only the named file runs)
    task_files: dict = field(default_factory=dict)


def run(ctx):
    from pathlib import Path

    from slim.lmeval.run import run_lm_eval

    p = ctx.params
    tasks = list(p.tasks) + [str(Path(v) / p.task_files[k]) if k in p.task_files else str(v)
                             for k, v in sorted(ctx.inputs.items()) if k.startswith("task")]
    model = ctx.inputs["model"] / p.model_file if p.model_file else ctx.inputs["model"]
    res = run_lm_eval(str(model), tasks, p.limit, threads=ctx.threads)
    ctx.write_json("lm_eval.json", res)
