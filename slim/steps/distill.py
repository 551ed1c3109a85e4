"""On-policy distillation of a student from the parent with trl's GKD trainer.

Generalized Knowledge Distillation (Agarwal et al., ICLR 2024, arXiv:2306.13649)
as implemented by ``trl.experimental.gkd.GKDTrainer``: at every optimizer step,
with probability ``lmbda`` the student *generates* a continuation of the prompt
(on-policy) and the teacher scores every generated token; otherwise the batch is
the corpus continuation (teacher-forced), or — with ``seq_kd`` — a continuation
the teacher generated. The loss is the generalized Jensen–Shannon divergence
between teacher and student next-token distributions on the completion tokens
(``beta`` 0: forward KL, 1: reverse KL, between: JSD_β).

trl's main-line ``DistillationTrainer`` is purely on-policy (no ``lmbda`` mix
with teacher-forced data), so GKD is the engine that matches the method.

Prompts are token prefixes of the shipped calibration windows (no chat
template, nothing from the hub): each window is cut into
``prompt_tokens + completion_tokens`` pieces; the last ``eval_windows``
windows are held out, and the teacher→student KL divergence on them is
measured before and after training. ``distill.json`` records the loss at every
step (and whether the step was on-policy), the settings, seeds, parameter
counts and wall time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

VERSION = 1
#: torch OpenMP threads wait passively (the executor sets OMP_WAIT_POLICY; shared CPUs)
OMP_PASSIVE = True
LIBS = ("torch", "transformers", "trl", "accelerate", "datasets", "safetensors", "numpy")

_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")


@dataclass
class Params:
    # GKD
    lmbda: float = 0.5               # fraction of steps on student-generated (on-policy) data
    beta: float = 0.5                # 0 forward KL, 1 reverse KL, between: generalized JSD
    temperature: float = 1.0         # sampling temperature of on-policy generations
    max_new_tokens: int = 32         # tokens generated per on-policy sample
    seq_kd: bool = False             # off-policy steps on teacher generations instead of the corpus
    # data
    prompt_tokens: int = 32          # prompt = this many tokens of a calibration window
    completion_tokens: int = 32      # teacher-forced continuation from the same window
    eval_windows: int = 4            # calibration windows held out to measure KLD before/after
    # optimisation
    max_steps: int = 50
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float = 1e-4
    lr_scheduler: str = "cosine"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    train_embeddings: bool = False   # False: token embeddings (and a tied lm_head) stay the parent's
    seed: int = 0
    dtype: str = "float16"           # dtype of the saved student
    subdir: str = ""                 # HF folder inside the student step's output

    def validate(self):
        errs = []
        for k in ("lmbda", "beta"):
            v = getattr(self, k)
            if not isinstance(v, (int, float)) or not 0 <= v <= 1:
                errs.append((k, f"must be in [0, 1] (got {v})"))
        if not isinstance(self.temperature, (int, float)) or self.temperature <= 0:
            errs.append(("temperature", "must be > 0"))
        for k in ("max_new_tokens", "prompt_tokens", "completion_tokens", "max_steps",
                  "batch_size", "grad_accum"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                errs.append((k, f"must be a positive integer (got {v})"))
        if not isinstance(self.eval_windows, int) or self.eval_windows < 0:
            errs.append(("eval_windows", "must be an integer ≥ 0"))
        if not isinstance(self.learning_rate, (int, float)) or not 0 < self.learning_rate < 1:
            errs.append(("learning_rate", f"must be in (0, 1) (got {self.learning_rate})"))
        if self.lr_scheduler not in _SCHEDULERS:
            errs.append(("lr_scheduler", f"must be one of {', '.join(_SCHEDULERS)}"))
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            errs.append(("warmup_steps", "must be an integer ≥ 0"))
        if self.dtype not in ("float16", "bfloat16"):
            errs.append(("dtype", "must be float16 or bfloat16"))
        return errs

    #: prompts and held-out windows are cut from the calibration set
    needs_calibration = True


def plan_stage(planner, current, params: dict, index: int):
    from slim.errors import SlimError
    from slim.steps.base import Artifact, Step

    if current.format not in ("hf", "safetensors"):
        raise SlimError(f"distill needs a 16-bit HF student as input, got {current.format}")
    from slim.steps.helpers import plain
    params = plain(params)
    p = Params(**params)
    cal = planner.calibration(planner.root_parent)
    sid = planner.add(Step(
        f"distill:{index}", "distill",
        {**params, **({"subdir": current.file} if current.file else {})},
        deps={"student": current.step, "teacher": planner.root_parent.step, "calibration": cal},
        desc=f"GKD from the parent: {p.max_steps} steps × {p.batch_size}, λ={p.lmbda} on-policy, "
             f"β={p.beta}"))
    return Artifact(sid, "hf", "model")


class _Renamer:
    """A planner view that adds a step under ``<id>~undistilled`` when ``<id>`` is taken.

    Replaying the stages after ``distill`` on the undistilled student must not collide
    with the real pipeline's step ids (``quantize_gguf:2``); steps whose inputs do not
    involve the student (calibration, parent) are shared unchanged.
    """

    SUFFIX = "~undistilled"

    def __init__(self, planner):
        self._p = planner

    def add(self, step):
        import dataclasses
        old = self._p.steps.get(step.id)
        if old is None or (old.kind, old.params, old.deps, old.files) == \
                (step.kind, step.params, step.deps, step.files):
            return self._p.add(step)
        return self._p.add(dataclasses.replace(step, id=step.id + self.SUFFIX))

    def __getattr__(self, name):
        return getattr(self._p, name)


def plan_baseline(planner, student, index: int):
    """("undistilled", the artifact of this method's pipeline without its distill stage).

    Called by the planner once the pipeline is planned: the stages after ``distill`` are
    planned again on the undistilled ``student``, so ``distill_half_q4_k_m`` compares
    against the undistilled student quantized the same way and the gain from
    distillation is measured at the artifact a user would deploy.
    """
    from slim.steps.base import step_module
    current = student
    view = _Renamer(planner)
    for i, stage in enumerate(planner.cfg.method.stages):
        if i > index:
            current = step_module(stage.kind).plan_stage(view, current,
                                                          dict(stage.params or {}), i)
    return "undistilled", current


# -- data ---------------------------------------------------------------------------------

def split_windows(tokens, p: Params):
    """(train examples [(prompt ids, completion ids)], held-out windows array)."""
    import numpy as np

    from slim.errors import SlimError
    n, seq = tokens.shape
    piece = p.prompt_tokens + p.completion_tokens
    if piece > seq:
        raise SlimError(f"distill.prompt_tokens + completion_tokens = {piece} exceeds the "
                        f"calibration windows ({seq} tokens); lower them or raise "
                        f"calibration.seq_len", "bad_params")
    n_eval = min(p.eval_windows, max(0, n - 1))
    train, held = tokens[: n - n_eval], tokens[n - n_eval:]
    examples = []
    for w in train:
        for s in range(0, seq - piece + 1, piece):
            examples.append((w[s:s + p.prompt_tokens].astype(np.int64).tolist(),
                             w[s + p.prompt_tokens:s + piece].astype(np.int64).tolist()))
    if not examples:
        raise SlimError("distill: no training examples in the calibration set", "bad_params")
    return examples, held


class PromptCompletionCollator:
    """Fixed-length prompt + corpus continuation -> the batch GKDTrainer expects.

    ``prompts`` feed on-policy generation; ``input_ids``/``labels`` are the teacher-forced
    batch (labels -100 on the prompt). Every prompt has the same length, so no padding.
    """

    def __call__(self, features):
        import torch
        prompts = torch.tensor([f["prompt"] for f in features], dtype=torch.long)
        comp = torch.tensor([f["completion"] for f in features], dtype=torch.long)
        ids = torch.cat([prompts, comp], 1)
        labels = ids.clone()
        labels[:, : prompts.shape[1]] = -100
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels,
                "prompts": prompts, "prompt_attention_mask": torch.ones_like(prompts)}


def kld_teacher_student(teacher, student, windows, batch: int = 2) -> Optional[float]:
    """Mean over tokens of KL(teacher ‖ student) on full windows (teacher-forced)."""
    import numpy as np
    import torch
    if windows is None or len(windows) == 0:
        return None
    tot, cnt = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            ids = torch.from_numpy(np.asarray(windows[i:i + batch], dtype=np.int64))
            t = torch.log_softmax(teacher(ids).logits.float(), -1)
            s = torch.log_softmax(student(ids).logits.float(), -1)
            kl = (t.exp() * (t - s)).sum(-1)
            tot += float(kl.double().sum())
            cnt += kl.numel()
    return tot / cnt


# -- the step -----------------------------------------------------------------------------

def distill(student, teacher, tokenizer, tokens, p: Params, workdir, threads: int = 2,
            log=print, progress=None) -> dict:
    """Train ``student`` in place with GKD; returns the summary (loss curve, settings, KLD)."""
    import os
    import random
    import time
    import warnings

    import datasets
    import torch
    from transformers import TrainerCallback, set_seed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from trl.experimental.gkd import GKDConfig, GKDTrainer

    torch.set_num_threads(threads)
    set_seed(p.seed)
    examples, held = split_windows(tokens, p)
    ds = datasets.Dataset.from_dict({"prompt": [e[0] for e in examples],
                                     "completion": [e[1] for e in examples]})
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    teacher.eval()
    for q in teacher.parameters():
        q.requires_grad_(False)
    if not p.train_embeddings:
        student.get_input_embeddings().weight.requires_grad_(False)
        out_emb = student.get_output_embeddings()
        if out_emb is not None:
            out_emb.weight.requires_grad_(False)
    n_trainable = sum(q.numel() for q in student.parameters() if q.requires_grad)
    student.train()
    t0 = time.time()
    kld_before = kld_teacher_student(teacher, student.eval(), held)
    student.train()
    eval_seconds = time.time() - t0
    log(f"KLD(teacher‖student) on {len(held)} held-out windows before: {kld_before}")

    steps: list[dict] = []
    modes: list[str] = []

    class Trainer(GKDTrainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            # GKDTrainer draws random.random() <= lmbda; peek at the same draw to record the mode
            state = random.getstate()
            r = random.random()
            random.setstate(state)
            modes.append("on_policy" if r <= self.lmbda else
                         "teacher_generated" if self.seq_kd else "teacher_forced")
            return super().training_step(model, inputs, num_items_in_batch)

    bar = progress(total=p.max_steps, desc="distill") if progress else None

    class Record(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                steps.append({"step": state.global_step, "loss": float(logs["loss"]),
                              "grad_norm": float(logs["grad_norm"]) if logs.get("grad_norm")
                              is not None else None,
                              "lr": logs.get("learning_rate"),
                              "seconds": round(time.time() - t_train, 2)})

        def on_step_end(self, args, state, control, **kw):
            if bar is not None:
                bar.update(1)

    from slim.steps.base import note_device
    t_w = {str(q.dtype).replace("torch.", "") for q in teacher.parameters()}
    note_device(("torch cuda float32" if torch.cuda.is_available() else "torch cpu float32")
                + ("" if t_w == {"float32"} else f" (teacher weights {'/'.join(sorted(t_w))})"))
    cfg = GKDConfig(
        output_dir=str(workdir), report_to="none", save_strategy="no", eval_strategy="no",
        max_steps=p.max_steps, per_device_train_batch_size=p.batch_size,
        gradient_accumulation_steps=p.grad_accum, learning_rate=p.learning_rate,
        lr_scheduler_type=p.lr_scheduler, warmup_steps=p.warmup_steps,
        weight_decay=p.weight_decay, max_grad_norm=p.max_grad_norm, logging_steps=1,
        seed=p.seed, data_seed=p.seed, bf16=False, fp16=False, gradient_checkpointing=False,
        dataloader_num_workers=0, disable_tqdm=True, use_cpu=not torch.cuda.is_available(),
        lmbda=p.lmbda, beta=p.beta, temperature=p.temperature, max_new_tokens=p.max_new_tokens,
        seq_kd=p.seq_kd, max_length=p.prompt_tokens + max(p.completion_tokens, p.max_new_tokens),
        dataset_kwargs={"skip_prepare_dataset": True}, remove_unused_columns=False,
        disable_dropout=True, save_only_model=True)
    trainer = Trainer(model=student, teacher_model=teacher, args=cfg, train_dataset=ds,
                      processing_class=tokenizer, data_collator=PromptCompletionCollator(),
                      callbacks=[Record()])
    t_train = time.time()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    trainer.train()
    train_seconds = time.time() - t_train
    if bar is not None:
        bar.close()
    student = trainer.model
    student.eval()
    t1 = time.time()
    kld_after = kld_teacher_student(teacher, student, held)
    eval_seconds += time.time() - t1
    log(f"KLD(teacher‖student) after: {kld_after}; {train_seconds:.0f}s for {p.max_steps} steps")
    for s, m in zip(steps, modes):
        s["mode"] = m
    losses = [s["loss"] for s in steps]
    k = max(1, len(losses) // 5)
    by_mode = {}
    for m in sorted(set(modes)):
        ls = [s["loss"] for s in steps if s.get("mode") == m]
        km = max(1, len(ls) // 3)
        by_mode[m] = {"steps": len(ls), "loss_first": sum(ls[:km]) / km,
                      "loss_last": sum(ls[-km:]) / km, "window": km}
    return {
        "engine": "trl.experimental.gkd.GKDTrainer",
        "loss": "generalized JSD_beta on completion tokens (beta=0 forward KL, 1 reverse KL)",
        "steps": steps,
        "loss_first": sum(losses[:k]) / k if losses else None,
        "loss_last": sum(losses[-k:]) / k if losses else None,
        "loss_window": k,
        "loss_by_mode": by_mode,
        "on_policy_steps": modes.count("on_policy"),
        "kld_holdout_before": kld_before, "kld_holdout_after": kld_after,
        "holdout_windows": int(len(held)), "holdout_tokens": int(held.size),
        "train_examples": len(examples),
        "tokens_seen": p.max_steps * p.batch_size * p.grad_accum
        * (p.prompt_tokens + max(p.completion_tokens, p.max_new_tokens)),
        "train_seconds": round(train_seconds, 2), "eval_seconds": round(eval_seconds, 2),
        "seconds_per_step": round(train_seconds / max(1, p.max_steps), 3),
        "threads": threads, "trainable_params": n_trainable,
        "settings": {k2: getattr(p, k2) for k2 in p.__dataclass_fields__ if k2 != "subdir"},
        "seeds": {"trainer": p.seed, "data": p.seed, "python_random_for_lmbda": p.seed},
    }


def run(ctx):
    import shutil
    import tempfile
    import time

    import numpy as np
    import torch
    from transformers import AutoTokenizer

    from slim.models.hf_io import load_causal_lm, save_16bit

    t0 = time.time()
    p = ctx.params
    torch.set_num_threads(ctx.threads)
    src = ctx.inputs["student"] / p.subdir if p.subdir else ctx.inputs["student"]
    # the student trains in float32 (its master weights, gradients and Adam state: mixed
    # precision would change the result); the teacher only runs forward, so a 16-bit teacher
    # stays 16-bit and computes each module in float32 (slim.models.upcast): the same logits
    # as a float32 copy at 2 instead of 4 bytes per teacher parameter
    from slim.models.hf_io import source_dtype
    from slim.models.upcast import Float32Compute, storage_dtype
    student = load_causal_lm(src, "float32")
    t_weights = storage_dtype(source_dtype(ctx.inputs["teacher"]), "float32")
    teacher = load_causal_lm(ctx.inputs["teacher"], t_weights)
    if t_weights != "float32":
        teacher.eval()
        Float32Compute(teacher)
    tok = AutoTokenizer.from_pretrained(str(src))
    tokens = np.load(ctx.inputs["calibration"] / "tokens.npy")
    n_student = sum(q.numel() for q in student.parameters())
    n_teacher = sum(q.numel() for q in teacher.parameters())
    work = tempfile.mkdtemp(prefix="slim-distill-")
    try:
        summary = distill(student, teacher, tok, tokens, p, work, ctx.threads, ctx.log,
                          ctx.progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    save_16bit(student, tok, ctx.out / "model", p.dtype)
    summary.update({"params_teacher": n_teacher, "params_student": n_student,
                    "params_ratio": round(n_student / n_teacher, 6), "dtype": p.dtype,
                    "wall_seconds": round(time.time() - t0, 2)})
    ctx.write_json("distill.json", summary)
    ctx.write_json("compress.json", {"engine": summary["engine"], "n_params": n_student})
