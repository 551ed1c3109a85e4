"""Export an HF folder to ONNX for onnxruntime-genai with its own model builder.

Engine: ``python -m onnxruntime_genai.models.builder -i <HF folder> -o <out> -p <precision>
-e <execution provider> -c <scratch> --extra_options k=v ...`` (onnxruntime-genai 0.18.0),
run as a subprocess so its output lands in the step's log and a failure of any kind becomes one
named failure, ``export_onnx_failed``, with the builder's last error line. It reads the local
folder only (``HF_HUB_OFFLINE=1``; ``hf_remote`` stays false, so no repository code runs). The
builder is Microsoft's maintained exporter for decoder LLMs; optimum's ONNX export has no int4
weight-only option. Its int4/int8 are weight-only ``MatMulNBits`` (block-wise, symmetric by
default, ``algo_config`` default/rtn/k_quant), activations in the execution provider's I/O
dtype (float32 on the CPU EP).

Output: ``model/`` = ``model.onnx`` + ``model.onnx.data`` + ``genai_config.json`` + tokenizer
files + chat template, which ``onnxruntime_genai.Model`` loads as is; ``export.json``
(builder command, versions, tensor inventory, bits per weight). Lineage (parent digest, method,
stage) goes into ``model.onnx``'s ``metadata_props`` (``slim.parent.digest`` as in the GGUF
path), which ``slim.verify`` checks against the report.

Valid precision / execution-provider pairs are the builder's own list (it prints it): FP32,
INT8, INT4 on the CPU EP; FP16/INT4 for DirectML; FP16/BF16/INT4/INT8/FP32 on CUDA.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

VERSION = 1
LIBS = ("onnxruntime-genai", "onnxruntime", "onnx", "onnx-ir", "transformers", "torch", "numpy")

#: (precision, execution provider) pairs the builder supports (its printed list, 0.18.0)
VALID = {("fp32", "cpu"), ("int8", "cpu"), ("int4", "cpu"),
         ("fp32", "cuda"), ("fp16", "cuda"), ("bf16", "cuda"), ("int8", "cuda"), ("int4", "cuda"),
         ("fp16", "dml"), ("int4", "dml"),
         ("int8", "webgpu"), ("int4", "webgpu")}
PRECISIONS = ("int4", "int8", "fp16", "bf16", "fp32")
PROVIDERS = ("cpu", "cuda", "dml", "webgpu")
ALGOS = ("default", "rtn", "k_quant")
BLOCK_SIZES = (16, 32, 64, 128, 256)
#: matmul_mixed_precision selectors and types the builder accepts (quant_config.MATCH_PRESETS)
MIXED_SELECTORS = ("last_matmul", "mixed_layers", "linear_attn")
MIXED_TYPES = ("int4", "int8")


@dataclass
class Params:
    precision: str = "int4"
    execution_provider: str = "cpu"
    block_size: int = 32                   # int4/int8 MatMulNBits block (the builder's default)
    algo: str = "default"                  # builder algo_config: default | rtn | k_quant
    accuracy_level: Optional[int] = None   # None: the builder's default (4 = int8 compute on CPU)
    mixed_precision: Optional[str] = None  # builder matmul_mixed_precision, e.g. last_matmul:int8
    symmetric: bool = True
    lineage: dict = field(default_factory=dict)
    subdir: str = ""                       # the HF folder inside the input step's output

    def validate(self):
        errs = []
        if self.precision not in PRECISIONS:
            errs.append(("precision", f"one of {', '.join(PRECISIONS)}"))
        if self.execution_provider not in PROVIDERS:
            errs.append(("execution_provider", f"one of {', '.join(PROVIDERS)}"))
        if not errs and (self.precision, self.execution_provider) not in VALID:
            ok = sorted(p for p, e in VALID if e == self.execution_provider)
            errs.append(("precision", f"the onnxruntime-genai builder does not export "
                                      f"{self.precision} for the {self.execution_provider} "
                                      f"execution provider; it does {', '.join(ok)}"))
        if self.block_size not in BLOCK_SIZES:
            errs.append(("block_size", f"one of {', '.join(map(str, BLOCK_SIZES))}"))
        if self.algo not in ALGOS:
            errs.append(("algo", f"one of {', '.join(ALGOS)}"))
        if self.accuracy_level is not None and self.accuracy_level not in (0, 1, 2, 3, 4):
            errs.append(("accuracy_level", "0-4 (1 fp32, 2 fp16, 3 bf16, 4 int8) or null"))
        for part in str(self.mixed_precision or "").split(","):
            if not part:
                continue
            sel, _, typ = part.partition(":")
            if sel not in MIXED_SELECTORS or typ not in MIXED_TYPES:
                errs.append(("mixed_precision", f"{part!r}: comma-separated selector:type pairs, "
                                                f"selector one of {', '.join(MIXED_SELECTORS)}, "
                                                f"type one of {', '.join(MIXED_TYPES)}"))
        if self.quantized and not self.symmetric and self.algo == "default":
            errs.append(("symmetric", "asymmetric weights need algo rtn or k_quant: the builder's "
                                      "default quantizer writes a tied int4 embedding that "
                                      "onnxruntime cannot load (type error; onnxruntime-genai "
                                      "0.18.0, measured on SmolLM2-135M)"))
        if self.quantized is False and (self.algo != "default" or self.mixed_precision):
            errs.append(("algo", f"{self.precision} is not quantized: algo and mixed_precision "
                                 f"apply to int4/int8"))
        return errs

    @property
    def quantized(self) -> bool:
        return self.precision in ("int4", "int8")

    @property
    def io_dtype(self) -> str:
        """Activations, scales, norms and unquantized weights (the builder's set_io_dtype)."""
        if self.precision in ("fp32", "fp16", "bf16"):
            return self.precision
        return "fp32" if self.execution_provider == "cpu" else "fp16"

    def describe(self) -> str:
        q = f" block {self.block_size}" if self.quantized else ""
        algo = f" {self.algo}" if self.quantized and self.algo != "default" else ""
        return f"{self.precision}{q}{algo} for the {self.execution_provider} EP"

    def extra_options(self) -> list[str]:
        opts = []
        if self.quantized:
            opts += [f"block_size={self.block_size}", f"is_symmetric={str(self.symmetric).lower()}"]
            if self.algo != "default":
                opts.append(f"algo_config={self.algo}")
            if self.accuracy_level is not None:
                opts.append(f"accuracy_level={self.accuracy_level}")
            if self.mixed_precision:
                opts.append(f"matmul_mixed_precision={self.mixed_precision}")
        return opts + ["hf_remote=false", "hf_token=false"]


def storage(p: Params) -> dict:
    """How the weights are stored (read by slim.hardware.deployed / estimate)."""
    from slim.hardware.estimate import onnx_storage
    return onnx_storage(p.precision, p.block_size, p.io_dtype, p.symmetric, p.algo,
                        p.mixed_precision)


def memory(params, model: dict) -> dict:
    """The builder loads the HF model in float32 through transformers, then writes the graph
    (quantized weights are built beside the float32 copy). Measured on the default model
    (134.5M params, int4): builder process peak RSS 1.58 GiB (/usr/bin/time); this estimate
    1.75 GiB. The step's own peak_rss in events.jsonl is the runner's (the builder is a child
    process)."""
    from slim.steps.base import TORCH_BASE
    return {"ram": int(6 * model["params"]) + TORCH_BASE,
            "why": "the onnxruntime-genai builder: the model in float32 through transformers "
                   "plus the exported weights (≈6 bytes/param)"}


def reference_step(planner, hf) -> str:
    """The parent exported at fp32 for the CPU EP: what an ONNX child is compared with in its
    own runtime (as a GGUF child is with its F16 GGUF parent). Returns the step id."""
    from slim.steps.base import Step
    sid = f"export_onnx:{hf.step}"
    planner.add(Step(sid, "export_onnx",
                     {"precision": "fp32", "execution_provider": "cpu",
                      **({"subdir": hf.file} if hf.file else {})},
                     deps={"model": hf.step},
                     desc="HF -> fp32 ONNX (onnxruntime-genai builder): the parent in ONNX Runtime"))
    return sid


def plan_stage(planner, current, params: dict, index: int):
    from slim.errors import SlimError
    from slim.steps.base import Artifact, Step
    from slim.steps.helpers import plain

    if current.format not in ("hf", "safetensors"):
        raise SlimError(f"export_onnx needs a 16-bit HF model as input, got a {current.format} "
                        f"artifact (the builder reads an HF folder)")
    params = plain(params)
    p = Params(**params)
    m = planner.cfg.model
    lineage = {"slim.parent.id": m.name, "slim.method": planner.cfg.method.name,
               "slim.stage": index}
    pdeps, pfiles = planner.parent_files()
    full = {**params, "lineage": lineage, **({"subdir": current.file} if current.file else {})}
    sid = planner.add(Step(f"export_onnx:{index}", "export_onnx", full,
                           deps={"model": current.step, **pdeps}, files=pfiles,
                           desc=f"onnxruntime-genai builder {p.describe()}"))
    return Artifact(sid, "onnx", "model")


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln or "Exception" in ln or "error:" in ln:
            return ln[:400]
    return lines[-1][:400] if lines else "no output"


def run(ctx):
    import shutil

    from slim.errors import SlimError
    from slim.models.onnx_folder import onnx_stats, write_lineage
    from slim.signing.attest import files_sha256, parent_digest
    from slim.steps.helpers import library_versions, source_dir

    p: Params = ctx.params
    src = source_dir(ctx)
    out = ctx.out / "model"
    scratch = ctx.out / "_builder_cache"
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(src),
           "-o", str(out), "-p", p.precision, "-e", p.execution_provider, "-c", str(scratch),
           "--extra_options", *p.extra_options()]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(ctx.threads)}
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace")
    sys.stdout.write(proc.stdout)
    sys.stdout.flush()
    seconds = time.time() - t0
    shutil.rmtree(scratch, ignore_errors=True)
    onnx_file = out / "model.onnx"
    if proc.returncode != 0 or not onnx_file.is_file() or not (out / "genai_config.json").is_file():
        why = _last_error(proc.stdout) if proc.returncode != 0 else \
            "it exited 0 but wrote no model.onnx / genai_config.json"
        raise SlimError(f"the onnxruntime-genai model builder could not export {src.name} as "
                        f"{p.describe()}: {why} (full output: this step's log)",
                        "export_onnx_failed")
    lineage = dict(p.lineage)
    if "parent" in ctx.inputs:
        lineage["slim.parent.digest"] = parent_digest(files_sha256(ctx.inputs["parent"]))
    if lineage:
        write_lineage(out, lineage)
    stats = onnx_stats(out)
    stats.update({"engine": "onnxruntime-genai model builder", "precision": p.precision,
                  "execution_provider": p.execution_provider,
                  "block_size": p.block_size if p.quantized else None,
                  "algo": p.algo if p.quantized else None, "io_dtype": p.io_dtype,
                  "command": ["python"] + [{str(src): "<input HF folder>", str(out): "model",
                                            str(scratch): "<scratch>"}.get(a, a) for a in cmd[1:]],
                  "lineage": lineage, "seconds": round(seconds, 2),
                  "libraries": library_versions(["onnxruntime-genai", "onnxruntime", "onnx",
                                                 "onnx-ir", "transformers", "torch"])})
    ctx.write_json("compress.json", stats)
