"""Fake build folders for the signing/verify/registry tests (no model needed)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, indent=2)


def make_parent_dir(root: Path) -> tuple[Path, dict]:
    d = root / "hf_parent"
    d.mkdir(parents=True)
    files = {"model.safetensors": os.urandom(2048), "config.json": b'{"model_type": "llama"}',
             "tokenizer.json": b'{"version": "1.0"}'}
    for k, v in files.items():
        (d / k).write_bytes(v)
    return d, {k: _sha(v) for k, v in files.items()}


def tiny_gguf(path: Path, parent_digest: str) -> bytes:
    """A real (tiny) GGUF carrying slim.parent.digest, as the quantize step writes it."""
    import gguf
    import numpy as np
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_string("slim.parent.digest", parent_digest)
    w.add_tensor("t", np.random.default_rng(0).random(64, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def fake_report(name: str, artifact: dict[str, bytes], *, parent_files: dict, parent_dir: str | None,
                parent_build: str | None = None, method="q4_k_m", hardware="apple8gb",
                fmt="gguf", status="accepted", retention=(0.97, 0.91, None), kld=0.0123) -> dict:
    files = {k: {"bytes": len(v), "sha256": _sha(v)} for k, v in artifact.items()}
    cats = {}
    for i, r in enumerate(retention):
        cats[f"behavioral/cat{i}"] = {"n": 20, "parent_score": 0.8, "child_score": None if r is None else 0.8 * r,
                                      "delta": None if r is None else 0.8 * r - 0.8, "retention": r}
    return {
        "schema": "slim.report/v1", "build": name, "status": status,
        "gates": {"failed": [] if status == "accepted" else ["kld_mean"], "checked": ["kld_mean", "retention"]},
        "target": {"model": "smollm2_135m", "method": method, "hardware": hardware, "probes": "default"},
        "parent": {"id": "smollm2_135m",
                   "digest": "sha256:" + hashlib.sha256(canonical(parent_files).encode()).hexdigest(),
                   "files": parent_files, "dir": parent_dir, "build": parent_build,
                   "license": "apache-2.0", "hf_repo": "HuggingFaceTB/SmolLM2-135M-Instruct",
                   "chat_format": "chatml", "provenance": "embedded default model"},
        "artifact": {"format": fmt, "files": files, "bytes": sum(len(v) for v in artifact.values()),
                     "bpw": 5.1, "tensor_types": {"q4_K": 120, "q6_K": 10}},
        "metrics": {"fidelity": {"ppl_parent": 10.5, "ppl_child": 10.9, "ppl_ratio": 1.038, "kld_mean": kld,
                                 "kld_mean_stderr": 0.0004, "kld_p99": 0.2, "top1_agreement": 0.93,
                                 "delta_p_mean": -0.004, "tokens": 4096},
                    "probes": {"categories": cats, "leaks_child": 0}},
        "fit": {"fits": True, "headroom_gb": 5.2},
        "speed_host": {"tok_s": 120.0}, "environment": {"python": "3.11"},
        "steps": [{"id": "a1", "kind": "quantize_gguf", "key": "k1", "cached": False, "seconds": 1.5}],
    }


@pytest.fixture
def key_dir(tmp_path, monkeypatch):
    d = tmp_path / "keys"
    monkeypatch.setenv("SLIM_KEY_DIR", str(d))
    return d


@pytest.fixture
def make_build(tmp_path):
    """make_build(name, parent_build=None, sign=True, **report_kw) -> build dir under tmp_path/builds."""
    from slim.registry import write_entry
    from slim.report.card import write_model_card, write_modelfile
    from slim.signing.attest import sign_build

    builds = tmp_path / "builds"
    builds.mkdir(exist_ok=True)
    parent_dir, parent_files = make_parent_dir(tmp_path / "parents")

    def _make(name, parent_build=None, sign=True, gguf=True, **kw):
        d = builds / name
        d.mkdir()
        if parent_build:
            prep = json.loads((builds / parent_build / "report.json").read_text())
            pfiles = {k: v["sha256"] for k, v in prep["artifact"]["files"].items()}
            pdir = str(builds / parent_build)
        else:
            pfiles, pdir = parent_files, str(parent_dir)
        if gguf:
            digest = "sha256:" + hashlib.sha256(canonical(pfiles).encode()).hexdigest()
            artifact = {"model.gguf": tiny_gguf(d / "model.gguf", digest)}
        else:
            artifact = {"model/model.safetensors": os.urandom(1024), "model/config.json": b"{}"}
        for k, v in artifact.items():
            (d / k).parent.mkdir(parents=True, exist_ok=True)
            (d / k).write_bytes(v)
        report = fake_report(name, artifact, parent_files=pfiles, parent_dir=pdir,
                             parent_build=parent_build, fmt="gguf" if gguf else "compressed-tensors", **kw)
        (d / "report.json").write_text(canonical(report) + "\n")
        (d / "report.md").write_text(f"# {name}\n")
        (d / "events.jsonl").write_text('{"event": "finished"}\n')
        (d / "config.yaml").write_text(f"method: {report['target']['method']}\n")
        write_entry(d, report)
        write_model_card(d, report)
        if gguf:
            write_modelfile(d, report)
        if sign:
            sign_build(d)
        return d

    _make.builds = builds
    _make.parent_dir = parent_dir
    return _make
