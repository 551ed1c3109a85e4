"""Numbers the studio shows beside a report's own: the headline retention's interval and the
fit of an artifact on every hardware tier (a report holds the fit on its target tier only).

Both use the code the build uses: the gates' paired retention interval
(``slim.probes.intervals``) and the fit formula and capability check (``slim.hardware``).
"""
from __future__ import annotations

from pathlib import Path

from slim.errors import SlimError
from slim.report.headline import HEADLINE_FAMILY


def headline_interval(report: dict) -> dict | None:
    """Retention over the behavioral items pooled (child passes / parent passes on the same
    items) with the interval the retention gates use, at the report's gate confidence.

    The headline itself is the mean of the per-category retentions (slim/report/headline.py);
    a mean of ratios has no exact paired interval, the pooled ratio does, and the two agree
    when categories are of equal size and the parent passes them alike. None when the parent
    passed no behavioral item (retention undefined)."""
    cats = (((report.get("metrics") or {}).get("probes") or {}).get("categories") or {})
    P = F = lost = gained = 0
    for c, s in cats.items():
        if c.split("/", 1)[0] != HEADLINE_FAMILY or not isinstance(s, dict):
            continue
        n, pp = s.get("n"), s.get("parent_passed")
        if not isinstance(n, int) or not isinstance(pp, int):
            continue
        fl = s.get("flips") or {}
        P += pp
        F += max(n - int(s.get("unpaired") or 0) - pp, 0)
        lost += len(fl.get("to_fail", s.get("flipped_to_fail", [])) or [])
        gained += len(fl.get("to_pass", s.get("flipped_to_pass", [])) or [])
    if P <= 0:
        return None
    conf = float((report.get("gates_how") or {}).get("confidence") or 0.95)
    from slim.probes.intervals import flip_retention_interval
    iv = flip_retention_interval(P, lost, F, gained, conf)
    if iv is None:
        return None
    return {"value": (P - lost + gained) / P, "low": iv[0], "high": iv[1], "confidence": conf,
            "parent_passed": P, "items": P + F, "lost": lost, "gained": gained}


def hardware_tiers() -> dict[str, dict]:
    """Every tier in conf/hardware, by name."""
    from slim.config import catalog
    return {str(hw.get("name") or n): hw for n, hw in catalog.configs("hardware").items()}


def gguf_arch(path: Path) -> dict:
    """A GGUF's shape from its metadata, read by llama.cpp with the vocabulary only (~0.2 s;
    gguf-py's reader parses every token string in Python, ~5 s for a 49k vocabulary). Falls
    back to :func:`slim.hardware.arch.arch_from_gguf` when llama.cpp cannot load the file."""
    from slim.hardware.arch import arch_from_gguf, normalize_arch
    try:
        import llama_cpp
        meta = llama_cpp.Llama(str(path), vocab_only=True, verbose=False).metadata
    except Exception:  # noqa: BLE001  (an architecture this llama.cpp does not load)
        return arch_from_gguf(path)
    a = meta.get("general.architecture")

    def get(key: str):
        v = meta.get(f"{a}.{key}")
        try:
            return int(v) if v is not None else None
        except ValueError:
            return None
    heads = get("attention.head_count")
    arch = {"model_type": a, "hidden_size": get("embedding_length"),
            "intermediate_size": get("feed_forward_length"), "num_hidden_layers": get("block_count"),
            "num_attention_heads": heads, "num_key_value_heads": get("attention.head_count_kv") or heads,
            "head_dim": get("attention.key_length"), "max_position_embeddings": get("context_length"),
            "vocab_size": get("vocab_size")}
    try:
        return normalize_arch({k: v for k, v in arch.items() if v is not None})
    except SlimError:
        return arch_from_gguf(path)


def _artifact_arch(build_dir: Path, report: dict) -> dict | None:
    from slim.hardware.arch import arch_from_hf_config
    files = list(((report.get("artifact") or {}).get("files") or {}))
    for rel in files:
        if rel.endswith(".gguf") and (build_dir / rel).is_file():
            return gguf_arch(build_dir / rel)
    for rel in files:
        if Path(rel).name == "config.json" and (build_dir / rel).is_file():
            return arch_from_hf_config(build_dir / rel)
    for cand in (build_dir / "model" / "config.json",):
        if cand.is_file():
            return arch_from_hf_config(cand)
    if (build_dir / "model" / "genai_config.json").is_file():   # an ONNX build
        from slim.models.onnx_folder import arch_from_genai_config
        return arch_from_genai_config(build_dir / "model")
    return None


def _method_conf(report: dict) -> dict:
    from slim.config import catalog
    name = (report.get("target") or {}).get("method") or (report.get("method") or {}).get("name")
    try:
        m = catalog.load("method", name) if name else {}
    except SlimError:  # a method this checkout has no config for: judge by the format alone
        m = {}
    fmt = (report.get("artifact") or {}).get("format")
    if not m.get("formats") and fmt:
        m["formats"] = [fmt]
    m.setdefault("name", name)
    m.setdefault("family", (report.get("method") or {}).get("family"))
    return m


def tier_fits(build_dir: Path, report: dict) -> list[dict]:
    """Per tier: ``fits`` (memory: weights + KV at the tier's context + overhead ≤ usable),
    ``runs`` ('native' | 'emulated' | 'no') and why not; [] when the artifact's shape is
    unreadable."""
    from slim.hardware import check, fit_report
    size = (report.get("artifact") or {}).get("bytes")
    try:
        arch = _artifact_arch(Path(build_dir), report)
    except SlimError:
        arch = None
    if arch is None or not isinstance(size, int):
        return []
    method = _method_conf(report)
    out = []
    for name, hw in hardware_tiers().items():
        try:
            # the tier's own context, as the build's report uses it (slim/report/assemble.py)
            fit = fit_report(hw, size, arch, hw.get("context_length"))
        except (SlimError, KeyError, TypeError, ValueError) as e:
            out.append({"tier": name, "fits": None, "runs": "?", "why": str(e)})
            continue
        native = check(method, hw, allow_emulation=False)
        emulated = check(method, hw, allow_emulation=True) if native else []
        runs = "native" if not native else ("emulated" if not emulated else "no")
        out.append({"tier": name, "fits": fit["fits"], "runs": runs,
                    "total_bytes": fit["total_bytes"], "usable_bytes": fit["usable_bytes"],
                    "why": fit["formula"] if runs == "native" else "; ".join(native)})
    return out
