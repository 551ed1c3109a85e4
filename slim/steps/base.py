"""Step description, param checking and the context a step runs in."""
from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from slim.errors import SlimError
from slim.fileio import write_json


@dataclass
class Step:
    id: str                     # unique in a plan, e.g. "quantize_gguf" or "fidelity:child"
    kind: str                   # module name under slim.steps
    params: dict = field(default_factory=dict)
    deps: dict[str, str] = field(default_factory=dict)     # input name -> step id
    files: dict[str, str] = field(default_factory=dict)    # input name -> external path
    desc: str = ""


@dataclass
class Artifact:
    """What a stage hands to the next: the step producing it and the format it is in. Lives
    beside Step so that step modules need nothing from the planner that imports them."""
    step: str          # step id producing it
    format: str        # hf | gguf | compressed-tensors | safetensors
    file: str = ""     # file inside the step's output ("" = the whole folder)


def step_module(kind: str) -> ModuleType:
    try:
        return importlib.import_module(f"slim.steps.{kind}")
    except ModuleNotFoundError as e:
        if e.name == f"slim.steps.{kind}":
            raise SlimError(f"unknown step kind {kind!r}") from None
        raise


def check_params(kind: str, params: dict | None, where: str) -> list[tuple[str, str]]:
    """Errors (key path, reason) for params of a step kind; empty when valid."""
    params = dict(params or {})
    try:
        mod = step_module(kind)
    except SlimError as e:
        return [(where.rsplit(".params", 1)[0] + ".kind", str(e))]
    P = getattr(mod, "Params", None)
    if P is None:
        return [] if not params else [(where, f"step {kind} takes no params")]
    names = {f.name for f in dataclasses.fields(P)}
    errors = [(f"{where}.{k}", f"unknown param for step {kind}; accepted: {', '.join(sorted(names))}")
              for k in sorted(set(params) - names)]
    errors += [(f"{where}.{k}", why) for k, why in _type_errors(P, params)]
    if errors:
        return errors
    try:
        obj = P(**params)
    except TypeError as e:
        return [(where, str(e))]
    if hasattr(obj, "validate"):
        errors += [(f"{where}.{k}" if k else where, why) for k, why in obj.validate()]
    return errors


#: scalar field types checked before a step's own validate: what a value must be, and its test
_SCALARS = {bool: ("true or false", lambda v: isinstance(v, bool)),
            int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
            float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
            str: ("a string", lambda v: isinstance(v, str)),
            type(None): ("null", lambda v: v is None)}


def _type_errors(P, params: dict) -> list[tuple[str, str]]:
    """Values whose type does not match a scalar field of ``P`` (bool, int, float, str, or an
    Optional/Union of them); fields of other types are left to ``validate``. Without this
    ``imatrix: abc`` was a truthy string and passed."""
    import types
    import typing
    try:
        hints = typing.get_type_hints(P)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: nothing to check
        return []
    errs = []
    for k, v in params.items():
        t = hints.get(k)
        union = typing.get_origin(t) in (typing.Union, types.UnionType)
        allowed = typing.get_args(t) if union else (t,)
        if not all(a in _SCALARS for a in allowed):
            continue
        if not any(_SCALARS[a][1](v) for a in allowed):
            errs.append((k, f"must be {' or '.join(_SCALARS[a][0] for a in allowed)}, got {v!r}"))
    return errs


def parse_params(kind: str, params: dict | None) -> Any:
    P = getattr(step_module(kind), "Params", None)
    return P(**(params or {})) if P else None


def needs_calibration(kind: str, params: dict | None) -> bool:
    """Whether a stage reads the calibration set, as its ``Params.needs_calibration`` says
    (a stage without that attribute reads none): validation checks the set only then."""
    return bool(getattr(parse_params(kind, params), "needs_calibration", False))


@dataclass
class StepContext:
    step_id: str
    kind: str
    params: Any                      # the Params instance (or dict when a step has none)
    raw_params: dict
    inputs: dict[str, Path]
    out: Path
    threads: int
    log: Callable[[str], None] = print
    #: where progress bars go: the terminal, while the step's other output goes to its log
    console: Any = None

    def write_json(self, name: str, obj: Any) -> Path:
        p = self.out / name
        write_json(p, obj, default=str, newline=False)  # no newline: the bytes step outputs always had
        return p

    def progress(self, iterable=None, total=None, desc=None):
        """A tqdm bar on the console; none when it is not a terminal (None: tqdm's test)."""
        import sys

        from tqdm import tqdm
        return tqdm(iterable, total=total, desc=desc or self.step_id, leave=False,
                    file=self.console or sys.stderr,
                    disable=True if os.environ.get("SLIM_NO_PROGRESS") == "1" else None)


# -- memory model -------------------------------------------------------------------------
#: a step process's own footprint before any weights: with torch and transformers' models
#: imported, or only a tokenizer / llama.cpp (measured 0.55 GiB for calibration_set and
#: fidelity_reference at every size, docs/scaling.md §8)
TORCH_BASE = 1 << 30
LIGHT_BASE = 640 << 20


def memory_need(kind: str, params: dict | None, model: dict) -> dict:
    """Peak memory a step of ``kind`` needs: ``{"ram": bytes, "vram": bytes, "why": str,
    "declared": bool}``, from the stage module's own ``memory(params, model)`` — the one place
    per step kind, beside its Params and LIBS — or, for a module that declares none, from what
    its LIBS say it loads: torch/transformers steps are assumed to hold the parent in float32
    plus working memory (6.5 bytes/param: what ``imatrix`` and the noise floor measured while they
    loaded float32, before they declared their own), llama.cpp steps its 16-bit GGUF. ``model``: ``{"params": n, "bytes_per_param": 2, "import_mode": "reference" |
    "rewrite" | None, "device": "cpu" | "cuda", "n_layers", "kv_dim"}`` (no weights read)."""
    mod = step_module(kind)
    fn = getattr(mod, "memory", None)
    p = int(model.get("params") or 0)
    if fn is not None:
        need = dict(fn(parse_params(kind, params) or dict(params or {}), model))
        need.setdefault("vram", 0)
        need["declared"] = True
        return need
    libs = set(getattr(mod, "LIBS", ()))
    if libs & {"torch", "transformers"}:
        # measured (docs/scaling.md §8, first run) when imatrix and the noise floor still loaded a
        # float32 copy: 0.62 GiB + 6.09 and 6.4 B/param; both declare their own memory() now
        return {"ram": int(6.5 * p) + TORCH_BASE, "vram": 0, "declared": False,
                "why": "undeclared torch step: the parent in float32 plus working memory "
                       "(6.5 bytes/param, as measured for float32 torch steps)"}
    if "llama-cpp-python" in libs:
        return {"ram": 2 * p + LIGHT_BASE, "vram": 0, "declared": False,
                "why": "undeclared llama.cpp step: the 16-bit GGUF (2 bytes/param)"}
    return {"ram": LIGHT_BASE, "vram": 0, "declared": False, "why": "no weights"}


def kv_cache_bytes(model: dict, n_ctx: int = 2048) -> int:
    """llama.cpp's F16 KV cache for ``n_ctx`` tokens (K and V, every layer)."""
    return 2 * 2 * n_ctx * int(model.get("n_layers") or 0) * int(model.get("kv_dim") or 0)


#: devices the running step process computed on ("cpu", "cuda:0 (NVIDIA H100)", "llama.cpp
#: GPU offload", ...): runtimes and steps note them, the runner returns them, the report shows
_DEVICES: list[str] = []


def note_device(label: str) -> None:
    if label not in _DEVICES:
        _DEVICES.append(label)


def devices_used() -> list[str]:
    return list(_DEVICES)


def torch_device(torch) -> str:
    """The torch device a step computes on: ``SLIM_TORCH_DEVICE`` when set (cpu, cuda, mps),
    else CUDA, then Apple's MPS, when present, else the CPU."""
    want = os.environ.get("SLIM_TORCH_DEVICE", "auto").lower()
    if want != "auto":
        return want
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def device_label(torch, device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return device
