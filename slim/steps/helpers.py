"""Helpers the model-writing steps share (llmc_oneshot, autoround, student, distill, lowrank,
perturb): step params as plain data, where the input model is, its 16-bit export dtype, the
calibration tokens, engine output into the step log, and checks of what an engine saved.
Steps import these from here, never from each other."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

from slim.errors import SlimError

DTYPES16 = ("float16", "bfloat16")


def plain(params: dict) -> dict:
    """Stage params as plain JSON data (Hydra hands over ListConfig/DictConfig values)."""
    from omegaconf import OmegaConf
    return {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in dict(params).items()}


def gguf_lineage(planner, index: int) -> dict:
    """GGUF metadata naming the parent, the method and the stage (llama_model_quantize kv overrides)."""
    m = planner.cfg.model
    return {"general.base_model.count": 1, "general.base_model.0.name": m.name,
            "slim.parent.id": m.name, "slim.method": planner.cfg.method.name,
            "slim.stage": index}


def source_dir(ctx) -> Path:
    """The HF folder a step reads: its model input, or ``params.subdir`` inside it."""
    return ctx.inputs["model"] / ctx.params.subdir if ctx.params.subdir else ctx.inputs["model"]


def export_dtype_of(src: Path, wanted: str) -> str:
    """The 16-bit dtype to save in: ``wanted``, or for ``auto`` the parent's own 16-bit dtype."""
    if wanted != "auto":
        return wanted
    try:
        cfg = json.loads((src / "config.json").read_text())
    except (OSError, ValueError):
        return "float16"
    d = str(cfg.get("dtype") or cfg.get("torch_dtype") or "")
    return d if d in DTYPES16 else "float16"


def check_sample_and_dtype_params(p) -> list[tuple[str, str]]:
    """Param checks the quantizing steps share: ``max_samples``, ``compute_dtype``, ``export_dtype``."""
    errs = []
    if p.max_samples is not None and (not isinstance(p.max_samples, int) or p.max_samples < 1):
        errs.append(("max_samples", "a positive integer or null (all)"))
    if p.compute_dtype not in ("float32",) + DTYPES16:
        errs.append(("compute_dtype", "float32, bfloat16 or float16"))
    if p.export_dtype not in ("auto",) + DTYPES16:
        errs.append(("export_dtype", "auto, float16 or bfloat16"))
    return errs


def load_tokens(ctx, max_samples: Optional[int]):
    """The calibration windows (``tokens.npy`` of the calibration input), at most ``max_samples``."""
    import numpy as np
    tokens = np.load(ctx.inputs["calibration"] / "tokens.npy")
    if max_samples:
        tokens = tokens[:max_samples]
    return tokens


def calibration_dataset(tokens):
    """A ``datasets.Dataset`` of pre-tokenized windows (nothing from the hub)."""
    import numpy as np
    from datasets import Dataset
    return Dataset.from_dict({"input_ids": tokens.astype(np.int64).tolist(),
                              "attention_mask": np.ones_like(tokens, dtype=np.int64).tolist()})


def count_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def library_versions(names) -> dict:
    """Installed versions (None when absent), as recorded in a step's output."""
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = None
    return out


class stderr_to_stdout:
    """Send fd 2 (loguru, tqdm, warnings of the engines, llama.cpp's C code) to fd 1: the step's
    log file, or nothing when a step runs without one (slim.executor.run_step_process)."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        os.dup2(1, 2)
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        return False


def check_quantized(folder: Path, what: str) -> None:
    """The export must really be quantized: config has quantization_config, weights packed."""
    cfg = json.loads((folder / "config.json").read_text())
    q = cfg.get("quantization_config") or {}
    if q.get("quant_method") != "compressed-tensors" or not q.get("config_groups"):
        raise SlimError(f"{what}: the saved model has no compressed-tensors "
                        f"quantization config", "export_quantization_failed")
    if q.get("quantization_status") != "compressed":
        raise SlimError(f"{what}: the saved model is not compressed "
                        f"(status {q.get('quantization_status')})", "export_quantization_failed")
