"""Evaluation steps of a plan: fidelity, probes, lm-eval and host speed.

Parent and child are measured by the same runtime: a GGUF child against the
parent's F16 GGUF in llama.cpp; an ONNX child against the parent's fp32 ONNX export in
onnxruntime-genai; an HF-format child against the parent HF folder in transformers.
The parent's results are separate steps whose keys do not
depend on the child, so every child of a parent reuses them from the cache.
"""
from __future__ import annotations

import os
import platform

from slim.paths import resolve
from slim.steps.base import Step

RUNTIME = {"gguf": "llama.cpp", "hf": "transformers", "compressed-tensors": "transformers",
           "safetensors": "transformers", "onnx": "onnxruntime-genai"}


def _gguf_parent(planner, parent):
    return planner.gguf_f16(parent)


def _onnx_parent(planner, parent):
    from slim.steps.base import Artifact
    from slim.steps.export_onnx import reference_step
    return Artifact(reference_step(planner, parent), "onnx", "model")


#: runtime -> the parent as that runtime runs it, where that is not the HF folder itself: the
#: F16 GGUF for llama.cpp, the fp32 ONNX export for onnxruntime-genai. The child is compared
#: with it, and a noise-floor step measures it against the HF parent in torch.
SAME_RUNTIME_PARENT = {"llama.cpp": _gguf_parent, "onnxruntime-genai": _onnx_parent}
NOISE_FLOOR_DESC = {"llama.cpp": "F16 GGUF in llama.cpp vs HF parent in torch",
                    "onnxruntime-genai": "fp32 ONNX in onnxruntime-genai vs HF parent in torch"}


def host_id() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"node": platform.node(), "cpu": cpu, "cores": os.cpu_count()}


def probe_categories(pr) -> list[str]:
    """Category patterns a build probes: ``probes.categories`` (over the shipped data and the
    user's) plus every category of the user's own files (``probes.data``), which always run."""
    cats = list(pr.categories)
    if pr.data:
        from slim.probes.suite import available_categories
        cats += [c for c in available_categories(resolve(pr.data)) if c not in cats]
    return cats


def plan_evaluation(planner, plan) -> None:
    cfg = planner.cfg
    pr = cfg.probes
    child = plan.artifact
    runtime = RUNTIME[child.format]
    same = SAME_RUNTIME_PARENT.get(runtime)
    parent_same = same(planner, plan.parent) if same else plan.parent
    models = {"parent": parent_same, "child": child}
    for role, art in plan.baselines.items():
        if RUNTIME[art.format] != runtime:
            from slim.errors import SlimError
            raise SlimError(f"baseline {role!r} is a {art.format} artifact but the child runs in "
                            f"{runtime}: a comparison needs both in the same runtime")
        models[role] = art

    if pr.fidelity.enabled:
        corpus = str(resolve(pr.fidelity.corpus))
        fid = {"n_ctx": pr.fidelity.n_ctx, "chunks": pr.fidelity.chunks}
        # the windows only: each fidelity step evaluates parent and child itself
        # (no full-vocabulary reference in the cache; slim/steps/fidelity_reference.py says why)
        ref = planner.add(Step("fidelity_reference", "fidelity_reference", fid,
                               deps={"tokenizer": plan.parent.step}, files={"corpus": corpus},
                               desc="held-out evaluation windows (parent tokenizer)"))
        from slim.hardware.fit import KV_CACHE_CHOICES, kv_cache_type
        kv = kv_cache_type(cfg)
        for role in (r for r in models if r != "parent"):
            # the child is also measured with the KV cache type it deploys with (llama.cpp)
            kv_param = {"kv_cache": kv} if role == "child" and runtime == "llama.cpp" \
                and kv != "f16" and kv in KV_CACHE_CHOICES else {}
            plan.evals["fidelity" if role == "child" else f"fidelity_{role}"] = planner.add(Step(
                f"fidelity:{role}", "fidelity_compare",
                {"runtime": runtime, "model_file": models[role].file,
                 "parent_file": parent_same.file, **kv_param},
                deps={"reference": ref, "parent": parent_same.step, "model": models[role].step},
                desc=f"{role} vs parent: PPL, KLD, top-1 ({runtime})"))
        if parent_same is not plan.parent:
            # cross-runtime noise floor: torch on the HF parent vs the child's runtime on the
            # parent as that runtime runs it (F16 GGUF, fp32 ONNX)
            plan.evals["noise_floor"] = planner.add(Step(
                "fidelity:noise_floor", "fidelity_compare",
                {"runtime": runtime, "model_file": parent_same.file, "parent_file": ""},
                deps={"reference": ref, "parent": plan.parent.step, "model": parent_same.step},
                desc=NOISE_FLOOR_DESC[runtime]))

    categories = probe_categories(pr)
    if categories:
        dirs = {"data00": str(resolve("data/probes"))}
        if pr.data:
            dirs["data01"] = str(resolve(pr.data))
        suite = planner.add(Step(
            "probe_suite", "probe_suite",
            {"categories": categories, "max_items": pr.max_items_per_category,
             "origins": {k: "shipped" if k == "data00" else "user" for k in dirs}},
            files=dirs, desc="probe items: shipped data" + (f" + {pr.data}" if pr.data else "")))
        plan.evals["probe_suite"] = suite
        probe_params = {"categories": categories, "max_items": pr.max_items_per_category,
                        "max_tokens": pr.max_tokens, "runtime": runtime,
                        "batch_size": pr.get("batch_size", 32)}
        for role, art in models.items():
            plan.evals[f"probes_{role}"] = planner.add(Step(
                f"probes:{role}", "probe_run", {**probe_params, "model_file": art.file},
                deps={"model": art.step, "probe_data": suite},
                desc=f"probes on the {role} ({runtime})"))

    if pr.lm_eval_tasks:
        files, names, task_files = {}, [], {}
        for i, t in enumerate(pr.lm_eval_tasks):
            if t.endswith((".yaml", ".yml")) or os.sep in t:
                # the task's folder, so its data files are part of the cache key; the file
                # itself is named, so only that task runs (not every YAML beside it)
                p = resolve(t)
                files[f"task{i:02d}"] = str(p.parent if p.is_file() else p)
                if p.is_file():
                    task_files[f"task{i:02d}"] = p.name
            else:
                names.append(t)
        for role, art in models.items():
            plan.evals[f"lm_eval_{role}"] = planner.add(Step(
                f"lm_eval:{role}", "lm_eval",
                {"tasks": names, "limit": pr.lm_eval_limit, "model_file": art.file,
                 "task_files": task_files},
                deps={"model": art.step}, files=files, desc=f"lm-eval on the {role}"))

    plan.evals["speed"] = planner.add(Step(
        "speed:child", "speed_host", {"model_file": child.file, "host": host_id(),
                                      "runtime": runtime,
                                      "threads": cfg.threads or os.cpu_count() or 1},
        deps={"model": child.step}, desc=f"prompt/generation tokens/s on this host ({runtime})"))
