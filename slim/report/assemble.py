"""Assemble, render, sign and publish a build folder from the executed plan.

Everything a report says is read from step outputs (fidelity.json, probes.json,
quantize.json, speed.json ...), each of which records how it was measured.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
import uuid
from pathlib import Path

from omegaconf import OmegaConf

from slim.cache.keys import lib_versions
from slim.fileio import write_json
from slim.hardware import arch_from_hf_config, decode_estimate, fit_report
from slim.hardware.fit import kv_cache_type
from slim.naming import build_name
from slim.plan import input_path
from slim.signing.attest import parent_digest as digest_of_files
from slim.signing.attest import files_sha256, sha256_file

SCHEMA = "slim.report/v1"


def _load(resolved, sid, name):
    if sid is None or sid not in resolved:
        return None
    p = resolved[sid].entry.data / name
    return json.loads(p.read_text()) if p.is_file() else None


def environment(threads) -> dict:
    from slim.evaluation import host_id
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "host": host_id(), "threads": threads or os.cpu_count(),
            "libraries": lib_versions(["torch", "transformers", "llama-cpp-python", "gguf",
                                       "llmcompressor", "compressed-tensors", "auto-round",
                                       "lm-eval", "trl", "hydra-core", "numpy", "slim"])}


WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".onnx", ".onnx.data")


def weights_bytes(root: Path) -> int:
    """Bytes of the weight files (safetensors, GGUF, torch) under root, or of root itself."""
    root = Path(root)
    paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in paths if p.name.endswith(WEIGHT_SUFFIXES))


def size_vs_parent(artifact: dict, parent: dict) -> dict | None:
    """Child vs parent on disk, weight files against weight files (configs and tokenizer
    files are left out of both sides, so a folder and a single GGUF compare alike)."""
    child = sum(e["bytes"] for rel, e in (artifact.get("files") or {}).items()
                if rel.endswith(WEIGHT_SUFFIXES))
    par = parent.get("weights_bytes")
    if not (child and par):
        return None
    return {"child_weights_bytes": child, "parent_weights_bytes": par,
            "ratio": round(child / par, 4),
            "how": "sum of .safetensors/.gguf/.bin/.pt/.onnx/.onnx.data file sizes of the artifact "
                   "/ of the parent "
                   "folder (the parent as imported, 16-bit for the embedded default)"}


def parent_section(cfg, plan, resolved) -> dict:
    m = cfg.model
    pdir = input_path(resolved, plan.parent)
    parent_build = None
    if m.source in ("hf_dir", "gguf_file"):
        # the user's own files are the parent; a folder inside a signed build links lineage
        from slim.paths import resolve
        pdir = resolve(m.path)
        for cand in (pdir, pdir.parent):
            if (cand / "report.json").is_file() and (cand / "attestation.intoto.json").is_file():
                parent_build = cand.name
                break
    files = files_sha256(pdir)
    sec = {"id": m.name, "source": m.source, "digest": digest_of_files(files), "files": files,
           "weights_bytes": weights_bytes(pdir),
           "dir": str(pdir), "build": parent_build, "license": m.license,
           "provenance": " ".join((m.provenance or "").split()) or None,
           "step_key": resolved[plan.parent.step].key}
    if m.get("hf_repo"):        # the model YAML names its Hugging Face repo, if it has one
        sec["hf_repo"] = m.hf_repo
    if m.get("chat_format"):
        sec["chat_format"] = m.chat_format
    how = _load(resolved, plan.parent.step, "import.json")
    if how:   # a user's folder: referenced by digest, or rewritten (fp32 -> float16: said here)
        sec["import"] = how
    from slim.plan import f16_gguf_of
    conv = plan.steps.get(f16_gguf_of(plan.parent).step)
    if conv is not None:   # the 16-bit GGUF the parent is evaluated as: F16, or BF16 for bf16
        sec["gguf_type"] = str(conv.params.get("outtype", "f16")).upper()
    if m.source == "pypi_gguf":
        sec["distributed_as"] = {"package": m.package, "file": m.file,
                                 "quantization": m.file.rsplit(".", 2)[-2] if m.file else None}
    return sec


def artifact_section(plan, resolved, staging: Path) -> dict:
    art = plan.artifact
    src = input_path(resolved, art)
    if art.format == "gguf":
        shutil.copyfile(src, staging / "model.gguf")
        files = {"model.gguf": staging / "model.gguf"}
        q = _load(resolved, art.step, "quantize.json") or {}
    else:
        shutil.copytree(src, staging / "model")
        files = {f"model/{p.relative_to(staging / 'model').as_posix()}": p
                 for p in sorted((staging / "model").rglob("*")) if p.is_file()}
        q = _load(resolved, art.step, "compress.json") or {}
    entries = {rel: {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
               for rel, p in files.items()}
    total = sum(e["bytes"] for e in entries.values())
    sec = {"format": art.format, "files": entries, "bytes": total,
           "bpw": q.get("bpw"), "file_bpw": q.get("file_bpw"),
           "tensor_types": q.get("tensor_types"), "bytes_by_type": q.get("bytes_by_type"),
           "n_params": q.get("n_params"), "engine": q.get("engine", "llama.cpp llama_model_quantize"
                                                           if art.format == "gguf" else None)}
    for k in ("type", "imatrix", "group_sizes", "recipe", "sparsity", "ignored_layers",
              "precision", "execution_provider", "block_size", "algo", "io_dtype"):
        if k in q:
            sec[k] = q[k]
    if not sec.get("bpw") and sec.get("n_params"):
        sec["bpw"] = round(8 * total / sec["n_params"], 4)
    return sec


def gate_confidence(cfg) -> float:
    from slim.probes.gates import DEFAULT_CONFIDENCE
    c = cfg.probes.gates.get("confidence") if cfg.probes.gates is not None else None
    return DEFAULT_CONFIDENCE if c is None else float(c)


def probes_section(cfg, plan, resolved) -> dict | None:
    par = _load(resolved, plan.evals.get("probes_parent"), "probes.json")
    chi = _load(resolved, plan.evals.get("probes_child"), "probes.json")
    if not (par and chi):
        return None
    from slim.probes.scoring import score_categories
    conf = gate_confidence(cfg)
    cats = score_categories(par["results"], chi["results"], confidence=conf)
    pii_hits = sum(len(r.get("leaks") or []) for r in chi["results"])
    leak_items = sorted({r["id"] for r in chi["results"] if r.get("leaks") or
                         (r["category"].startswith("leakage/") and not r["passed"])})
    sources = _load(resolved, plan.evals.get("probe_suite"), "sources.json")
    return {"categories": cats, "leaks_child": len(leak_items), "leak_items_child": leak_items,
            "pii_hits_child": pii_hits, "sources": sources,
            "how": {"runtime": chi["runtime"], "decoding": "greedy", "max_tokens": chi["max_tokens"],
                    "generation": {"parent": par.get("generation"), "child": chi.get("generation")},
                    "items": _items_origin(cfg, sources),
                    "interval": f"95% Wilson per score (parent_ci, child_ci); seeded paired bootstrap "
                                f"over items for delta_ci; retention (ci_low, ci_high): exact "
                                f"conditional interval from the flipped items, each end a one-sided "
                                f"{conf:g} bound (the interval the gates decide on)"}}


def _items_origin(cfg, sources: dict | None) -> str:
    """Where the probe items came from, in words, for the report's ``how``."""
    if not sources:
        return "data/probes/*.jsonl (ids listed per category)"
    parts = []
    for src in sources.get("sources") or []:
        taken = sum(f["selected"] for f in src["files"])
        if not taken:
            continue
        where = "data/probes (shipped)" if src["origin"] == "shipped" else \
            f"{cfg.probes.data or src['dir']} (the user's own, probes.data)"
        parts.append(f"{taken} item(s) from {where}: "
                     + ", ".join(f"{f['file']} sha256:{f['sha256'][:12]}" for f in src["files"]
                                 if f["selected"]))
    return "; ".join(parts) + " (ids listed per category)"


def fit_section(cfg, plan, resolved, artifact) -> tuple[dict | None, dict | None]:
    hw = OmegaConf.to_container(cfg.hardware, resolve=True)
    # the last 16-bit HF stage has the artifact's shape (a student may have fewer layers)
    hf = next((a for a in reversed(plan.stages) if a.format in ("hf", "safetensors")), plan.parent)
    arch = arch_from_hf_config(input_path(resolved, hf))
    fit = fit_report(hw, artifact["bytes"], arch, hw.get("context_length"),
                     kv_dtype=kv_cache_type(cfg))
    est = decode_estimate(hw, artifact["bytes"] + fit["kv_cache_bytes"])
    return fit, est


def run_params(cfg, fit: dict | None) -> dict:
    """How the build is meant to be run on the tier: the KV cache type it was sized (and, for a
    GGUF, measured) with, the context the fit assumed; llama.cpp needs flash attention for a
    quantized V cache. The Modelfile and the model card print these."""
    kv = kv_cache_type(cfg)
    return {"kv_cache": kv, "kv_cache_from": "kv_cache" if cfg.get("kv_cache") else
            "hardware.kv_cache_dtype", "flash_attn": kv not in ("f16", "f32", "bf16"),
            "context_length": (fit or {}).get("context_length")}


def gates_section(cfg, metrics) -> list[dict]:
    """One record per gate check (see :func:`slim.probes.gates.evaluate_gates`)."""
    from slim.probes.gates import evaluate_gates
    gates = OmegaConf.to_container(cfg.probes.gates, resolve=True)
    cats = (metrics.get("probes") or {}).get("categories") or {}
    return evaluate_gates(cats, metrics.get("fidelity"), gates, metrics.get("lm_eval"))


#: lm-eval metrics that are lower-is-better, for results that predate the harness's own map
LOWER_IS_BETTER = {"perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte",
                   "brier_score"}


def _higher_is_better(meta: dict, task: str, metric: str) -> bool:
    d = (meta.get("higher_is_better") or {}).get(task) or {}
    base = metric.split(",", 1)[0]
    for k in (metric, base):
        if isinstance(d.get(k), bool):
            return d[k]
    return base not in LOWER_IS_BETTER


def lm_eval_section(plan, resolved, confidence: float = 0.95) -> tuple[dict, dict] | None:
    """(``{"<task>/<metric>": {parent, child, delta, higher_is_better, retention, ci_low,
    ci_high, n, parent_passed, flips, parent_stderr, child_stderr}}``, the child run's
    provenance). Retention is child/parent, or parent/child where the harness says lower is
    better (perplexity, bits_per_byte ...), so below 1 is always a loss. Per-document 0/1
    results are paired by doc id: flips name the documents and the interval is the exact
    conditional one the gates use."""
    par = _load(resolved, plan.evals.get("lm_eval_parent"), "lm_eval.json")
    chi = _load(resolved, plan.evals.get("lm_eval_child"), "lm_eval.json")
    if not (par and chi):
        return None
    from slim.probes.intervals import flip_retention_interval
    from slim.probes.scoring import flips
    meta = chi.get("_meta") or {}
    out = {}
    for task, res in chi.items():
        if task.startswith("_"):
            continue
        ps = {r["doc_id"]: r for r in (par.get("_samples") or {}).get(task, [])}
        cs = {r["doc_id"]: r for r in (chi.get("_samples") or {}).get(task, [])}
        ids = sorted(set(ps) & set(cs), key=lambda d: (d is None, d))
        for metric, v in res.items():
            if metric.endswith("_stderr") or not isinstance(v, (int, float)):
                continue
            pv = par.get(task, {}).get(metric)
            higher = _higher_is_better(meta, task, metric)
            if higher:
                ret = (v / pv) if pv else None
            else:
                ret = (pv / v) if (pv is not None and v) else None
            e = {"parent": pv, "child": v, "delta": (v - pv) if pv is not None else None,
                 "higher_is_better": higher, "retention": ret, "ci_low": None, "ci_high": None,
                 "n": len(ids) or None, "flips": None,
                 "parent_stderr": par.get(task, {}).get(f"{metric}_stderr"),
                 "child_stderr": res.get(f"{metric}_stderr")}
            pair = [(ps[d].get(metric), cs[d].get(metric)) for d in ids]
            if pair and all(isinstance(x, (int, float)) and x in (0, 1) for pp in pair for x in pp):
                pb, cb = [bool(x) for x, _ in pair], [bool(y) for _, y in pair]
                e["flips"] = flips(ids, pb, cb)
                e["parent_passed"] = sum(pb)
                nf, np_ = len(e["flips"]["to_fail"]), len(e["flips"]["to_pass"])
                ci = (flip_retention_interval(sum(pb), nf, len(pb) - sum(pb), np_, confidence)
                      if higher else None)
                if ci:
                    e["ci_low"], e["ci_high"] = round(ci[0], 4), round(ci[1], 4)
            out[f"{task}/{metric}"] = e
    return out, meta


def assemble_report(cfg, plan, resolved, staging: Path, seconds: float) -> dict:
    artifact = artifact_section(plan, resolved, staging)
    parent = parent_section(cfg, plan, resolved)
    vs = size_vs_parent(artifact, parent)
    if vs:
        artifact["size_vs_parent"] = vs
    metrics: dict = {}
    fid = _load(resolved, plan.evals.get("fidelity"), "fidelity.json")
    if fid:
        metrics["fidelity"] = fid
    nf = _load(resolved, plan.evals.get("noise_floor"), "fidelity.json")
    if nf:
        metrics["noise_floor"] = nf
    pr = probes_section(cfg, plan, resolved)
    if pr:
        metrics["probes"] = pr
    le = lm_eval_section(plan, resolved, gate_confidence(cfg))
    if le:
        metrics["lm_eval"], metrics["lm_eval_how"] = le
    from slim.report.compare import distillation_section, lowrank_section
    dist = distillation_section(plan, resolved, artifact)
    if dist:
        metrics["distillation"] = dist
    lr = lowrank_section(plan, resolved)
    if lr:
        artifact["lowrank"] = lr
    from slim.report.allocation import allocation_section
    alloc = allocation_section(plan, resolved, artifact, metrics)
    if alloc:
        artifact["allocation"] = alloc
    fit, est = fit_section(cfg, plan, resolved, artifact)
    speed = _load(resolved, plan.evals.get("speed"), "speed.json")
    gates = gates_section(cfg, metrics)
    from slim.probes.gates import HOW as GATES_HOW
    from slim.probes.gates import build_status
    cal = _load(resolved, plan.calibration, "calibration.json")
    report = {
        "schema": SCHEMA,
        "build": None,
        "status": build_status(gates),
        "gates": gates,
        "gates_config": OmegaConf.to_container(cfg.probes.gates, resolve=True),
        "gates_how": {**GATES_HOW, "confidence": gate_confidence(cfg),
                      "statuses": "accepted: every gate passes; rejected: any gate fails; "
                                  "inconclusive: none fails, at least one is inconclusive or "
                                  "unverified; ungated: the probe suite has no gates"},
        "target": {"model": cfg.model.name, "method": cfg.method.name,
                   "hardware": cfg.hardware.name, "probes": cfg.probes.name,
                   "calibration": cfg.calibration.name},
        "method": {"name": cfg.method.name, "family": cfg.method.family,
                   "description": cfg.method.description,
                   "base_model_relation": cfg.method.base_model_relation,
                   "stages": OmegaConf.to_container(cfg.method.stages, resolve=True)},
        "parent": parent,
        "artifact": artifact,
        "metrics": metrics,
        "fit": fit,
        "run": run_params(cfg, fit),
        "speed_estimate": est,
        "speed_host": speed,
        "calibration": cal,
        "environment": {**environment(cfg.threads),
                        "devices": sorted({d for r in resolved.values()
                                            for d in (getattr(r, "devices", None) or [])})},
        "steps": [{"id": r.step.id, "kind": r.step.kind, "key": r.key, "cached": r.cached,
                   "seconds": r.seconds, "peak_rss_bytes": r.peak_rss_bytes,
                   **({"peak_gpu_bytes": r.peak_gpu_bytes} if r.peak_gpu_bytes else {}),
                   **({"devices": r.devices} if getattr(r, "devices", None) else {})}
                  for r in resolved.values()],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(seconds, 2),
    }
    return report


def publish(cfg, plan, resolved, staging: Path, final: Path, seconds: float,
            extra: dict | None = None) -> dict:
    report = assemble_report(cfg, plan, resolved, staging, seconds)
    report["build"] = build_name(cfg)
    report.update(extra or {})
    (staging / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    write_json(staging / "steps.json", [
        {"id": r.step.id, "kind": r.step.kind, "key": r.key, "material": r.material}
        for r in resolved.values()])
    write_json(staging / "report.json", report)
    from slim.registry import write_entry
    from slim.report.card import write_model_card, write_modelfile
    from slim.report.plot import PLOT_NAME, retention_plot
    from slim.report.render import render_markdown
    plot = retention_plot(report, staging / PLOT_NAME)
    (staging / "report.md").write_text(render_markdown(report, plot=plot.name if plot else None))
    write_model_card(staging, report)
    if plan.artifact.format == "gguf":
        write_modelfile(staging, report)
    write_entry(staging, report)
    # move step logs out of the signed folder's subjects? they are build evidence: keep them
    if cfg.signing.enabled:
        from slim.signing.attest import sign_build
        from slim.signing.keys import ensure_signing_key
        _, key_id, key_path, created = ensure_signing_key(cfg.signing.key, cfg.signing.key_dir)
        if created:
            print(f"slim: created signing key {key_id} at {key_path} "
                  f"(public key beside it; share it so others can verify)", file=sys.stderr)
        sign_build(staging, cfg.signing.key or key_path, cfg.signing.key_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        trash = final.parent / ".staging" / f"old-{final.name}-{uuid.uuid4().hex[:6]}"
        os.rename(final, trash)
        os.rename(staging, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(staging, final)
    return report
