"""Run lm-eval tasks on one artifact, in process and offline.

``run_lm_eval(path, tasks, limit)``: a ``.gguf`` file runs through our
in-process llama.cpp model (:class:`slim.lmeval.llamacpp_lm.LlamaCppLM`), an HF
folder (plain or compressed-tensors) through lm-eval's own ``HFLM`` on the CPU.
``tasks`` holds lm-eval task names and/or paths to local task YAML files or
folders of them. Local tasks are copied (YAML and Python files only) into a
temporary include folder with every relative ``data_files`` path made absolute
(looked up next to the YAML, in the working directory and in the repository
root), so a shipped task works from any directory.

The result::

    {"<task>": {"acc": 0.5, "acc_stderr": 0.19, "acc_norm": ..., ...},
     "_meta": {"lm_eval_version", "limit", "n_samples": {task: n}, "model_kind", ...},
     "_samples": {"<task>": [{"doc_id": 0, "doc_hash": ..., "acc": 1.0, ...}, ...]}}

``_samples`` lets a report list the items that flipped between parent and child.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from pathlib import Path

import slim  # noqa: F401  (sets the Hugging Face libraries offline)
from slim.errors import SlimError
from slim.runtimes.base import default_threads, runtime_kind

_TASK_FILE_SUFFIXES = (".yaml", ".yml")


def _yaml_load(text: str):
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    # lm-eval task files use tags such as ``!function utils.process_docs``
    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


def _looks_like_path(t: str) -> bool:
    return t.endswith(_TASK_FILE_SUFFIXES) or os.sep in t or "/" in t or Path(t).exists()


def _resolve_data_file(value: str, yaml_dir: Path, yaml_file: Path) -> str:
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value) or os.path.isabs(value):
        return value
    from slim import REPO_ROOT
    candidates = [Path.cwd() / value, yaml_dir / value, yaml_dir / Path(value).name,
                  REPO_ROOT / value]
    for c in candidates:
        if c.exists() or (any(ch in value for ch in "*?[") and list(c.parent.glob(c.name))):
            return str(c.resolve())
    raise SlimError(f"lm-eval task {yaml_file}: data file {value!r} not found (looked in "
                    f"{', '.join(str(c.parent) for c in candidates)})", "lm_eval_data_missing")


def _rewrite_yaml(src: Path, dst: Path) -> str | None:
    """Copy one task YAML with absolute data_files; return its task name (None if not a task)."""
    text = src.read_text(encoding="utf-8")
    try:
        cfg = _yaml_load(text)
    except Exception as e:
        raise SlimError(f"lm-eval task file {src} is not valid YAML: {e}", "invalid_task") from None
    if not isinstance(cfg, dict):
        raise SlimError(f"lm-eval task file {src} does not hold a mapping", "invalid_task")
    files = ((cfg.get("dataset_kwargs") or {}).get("data_files")
             if isinstance(cfg.get("dataset_kwargs"), dict) else None)
    values: list[str] = []
    if isinstance(files, str):
        values = [files]
    elif isinstance(files, list):
        values = [v for v in files if isinstance(v, str)]
    elif isinstance(files, dict):
        for v in files.values():
            values += [v] if isinstance(v, str) else [x for x in (v or []) if isinstance(x, str)]
    for v in sorted(set(values), key=len, reverse=True):
        new = _resolve_data_file(v, src.parent, src)
        if new != v:
            pattern = r"(?<=[\s:'\"\[,])" + re.escape(v) + r"(?=[\s'\"\],]|$)"
            text = re.sub(pattern, lambda _m: new.replace("\\", "/"), text, flags=re.M)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text, encoding="utf-8")
    task = cfg.get("task")
    return task if isinstance(task, str) else (cfg.get("group") if isinstance(cfg.get("group"), str)
                                               else None)


def prepare_tasks(tasks: list[str], workdir: Path) -> tuple[list[str], list[str]]:
    """(task names to run, include folders) for a mix of task names and local paths."""
    names: list[str] = []
    include: list[str] = []
    for i, t in enumerate(tasks):
        t = str(t)
        if not _looks_like_path(t):
            names.append(t)
            continue
        p = Path(t).expanduser()
        if not p.exists():
            raise SlimError(f"lm-eval task file {p} does not exist", "lm_eval_task_missing")
        dest = workdir / f"tasks{i:02d}"
        if p.is_file():
            if p.suffix not in _TASK_FILE_SUFFIXES:
                raise SlimError(f"lm-eval task file {p} is not a .yaml file", "invalid_task")
            # siblings (included YAML, utils.py for !function) travel with it
            dest.mkdir(parents=True, exist_ok=True)
            for sib in sorted(p.parent.iterdir()):
                if not sib.is_file() or sib == p:
                    continue
                if sib.suffix == ".py":
                    shutil.copy2(sib, dest / sib.name)
                elif sib.suffix in _TASK_FILE_SUFFIXES:
                    try:
                        _rewrite_yaml(sib, dest / sib.name)
                    except SlimError:
                        pass  # an unrelated broken sibling must not stop the named task
            name = _rewrite_yaml(p, dest / p.name)
            if not name:
                raise SlimError(f"lm-eval task file {p} has no `task:` name", "invalid_task")
            names.append(name)
        else:
            found = []
            for f in sorted(p.rglob("*")):
                if not f.is_file():
                    continue
                rel = f.relative_to(p)
                if f.suffix in _TASK_FILE_SUFFIXES:
                    n = _rewrite_yaml(f, dest / rel)
                    cfg_text = f.read_text(encoding="utf-8")
                    if n and re.search(r"^(dataset_path|include|task)\s*:", cfg_text, re.M):
                        found.append(n)
                elif f.suffix == ".py":
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, dest / rel)
            if not found:
                raise SlimError(f"lm-eval task folder {p} holds no task YAML", "invalid_task")
            names += [n for n in dict.fromkeys(found)]
        include.append(str(dest))
    return list(dict.fromkeys(names)), include


def _clean(v):
    if isinstance(v, float) and math.isnan(v):
        return None
    if v == "N/A":
        return None
    try:
        import numpy as np
        if isinstance(v, np.generic):
            return v.item()
    except ImportError:  # pragma: no cover
        pass
    return v


def _metrics(task_res: dict) -> dict:
    out = {}
    for key, v in task_res.items():
        if key in ("alias", "name", "sample_len", "samples") or "," not in key:
            continue
        metric, filt = key.split(",", 1)
        out[metric if filt == "none" else f"{metric},{filt}"] = _clean(v)
    return out


def _samples(samples: list[dict]) -> list[dict]:
    rows = []
    for s in samples:
        row = {"doc_id": s.get("doc_id"), "doc_hash": s.get("doc_hash")}
        for m in s.get("metrics", []) or []:
            if m in s:
                row[m] = _clean(s[m])
        rows.append(row)
    return sorted(rows, key=lambda r: (r["doc_id"] is None, r["doc_id"]))


def hf_lm(artifact_path, dtype: str = "float32", batch_size: int = 1):
    """lm-eval's HFLM on an HF folder, on the CPU. A 16-bit safetensors folder evaluated in
    float32 is not copied to float32: it is loaded in its own dtype and handed to HFLM as a model
    whose modules compute in float32 one at a time (:mod:`slim.models.upcast`; the same
    log-likelihoods as a float32 copy, at 2 instead of 4 bytes per parameter)."""
    import torch
    from lm_eval.models.huggingface import HFLM

    from slim.models.hf_io import source_dtype
    from slim.models.upcast import Float32Compute, storage_dtype
    weights = storage_dtype(source_dtype(artifact_path), dtype)
    try:
        if weights == dtype:
            return HFLM(pretrained=str(artifact_path), device="cpu", dtype=dtype,
                        batch_size=batch_size, trust_remote_code=False)
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained(str(artifact_path),
                                                     dtype=getattr(torch, weights),
                                                     use_safetensors=True).eval()
        Float32Compute(model, getattr(torch, dtype))
        return HFLM(pretrained=model, tokenizer=str(artifact_path), batch_size=batch_size,
                    trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise SlimError(f"lm-eval (HFLM) cannot load {artifact_path}: "
                        f"{str(e).splitlines()[0]}", "model_load_failed") from None


def run_lm_eval(artifact_path: str, tasks: list[str], limit: int | None,
                threads: int | None = None, seed: int = 0, *, dtype: str = "float32",
                n_ctx: int = 2048, batch_size: int = 1, num_fewshot: int | None = None,
                bootstrap_iters: int = 1000, log_samples: bool = True) -> dict:
    """Evaluate one artifact on lm-eval tasks (names or local YAML paths), offline."""
    if not tasks:
        raise SlimError("no lm-eval tasks given", "invalid_config")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise SlimError(f"lm-eval limit must be a positive integer or null, not {limit!r}",
                        "invalid_config")
    kind = runtime_kind(artifact_path)
    threads = default_threads(threads)

    import lm_eval
    from lm_eval import evaluator
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory(prefix="slim-lmeval-") as tmp:
        names, include = prepare_tasks(list(tasks), Path(tmp))
        only_local = all(_looks_like_path(str(t)) for t in tasks)
        tm = TaskManager(include_path=include or None, include_defaults=not only_local)
        known = set(tm.all_tasks)
        unknown = [n for n in names if n not in known]
        if unknown:
            import difflib
            hints = {n: difflib.get_close_matches(n, sorted(known), n=3) for n in unknown}
            msg = "; ".join(f"{n!r}" + (f" (did you mean {', '.join(h)}?)" if h else "")
                            for n, h in hints.items())
            raise SlimError(f"unknown lm-eval task(s): {msg}", "lm_eval_task_missing")

        if kind == "llama.cpp":
            from slim.lmeval.llamacpp_lm import LlamaCppLM
            lm = LlamaCppLM(pretrained=str(artifact_path), n_ctx=n_ctx, threads=threads, seed=seed)
        else:
            import torch
            torch.set_num_threads(threads)
            from slim.runtimes.hf import check_hf_folder
            check_hf_folder(artifact_path)
            lm = hf_lm(artifact_path, dtype, batch_size)
        try:
            res = evaluator.simple_evaluate(
                model=lm, tasks=names, limit=limit, num_fewshot=num_fewshot, task_manager=tm,
                random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                fewshot_random_seed=seed, bootstrap_iters=bootstrap_iters,
                log_samples=log_samples, verbosity="WARNING")
        finally:
            if hasattr(lm, "close"):
                lm.close()

    out: dict = {}
    for task, task_res in (res.get("results") or {}).items():
        out[task] = _metrics(task_res)
    for group, group_res in (res.get("groups") or {}).items():
        out.setdefault(group, _metrics(group_res))
    n_samples = {t: (v or {}).get("effective") for t, v in (res.get("n-samples") or {}).items()}
    out["_meta"] = {
        "lm_eval_version": getattr(lm_eval, "__version__", "unknown"),
        "limit": limit, "n_samples": n_samples, "model_kind": kind,
        "tasks": names, "task_versions": {k: _clean(v) for k, v in (res.get("versions") or {}).items()},
        "n_shot": {k: _clean(v) for k, v in (res.get("n-shot") or {}).items()},
        "seed": seed, "threads": threads,
        # the harness's own direction per metric (perplexity, bits_per_byte ...: lower is better)
        "higher_is_better": {t: {m: bool(v) for m, v in (d or {}).items() if isinstance(v, bool)}
                             for t, d in (res.get("higher_is_better") or {}).items()},
        **({"dtype": dtype} if kind == "transformers" else {"n_ctx": n_ctx}),
    }
    if log_samples and res.get("samples"):
        out["_samples"] = {t: _samples(s) for t, s in res["samples"].items()}
    return out
