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
        arch = dict(OmegaConf.to_container(m.arch, resolve=True))
        arch.setdefault("vocab_size", 49152)
        arch.pop("model_type", None)
        return normalize_arch(arch)
    raise SlimError(f"model.source={m.source}: cannot estimate")


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
            est = estimate_weights(arch, name, imatrix=imatrix)
        except SlimError as e:
            rows.append({"method": name, "error": str(e)})
            continue
        fit = fit_report(hw, est["bytes"], arch, None, headroom)
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
