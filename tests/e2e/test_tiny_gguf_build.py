"""End to end on the tiny seeded model: a full GGUF build, its report, rebuild from cache."""
from __future__ import annotations

import json

from tests.conftest import TINY, compose


def test_build_folder_complete(tiny_q4):
    names = {p.name for p in tiny_q4.iterdir()}
    assert {"model.gguf", "report.json", "report.md", "events.jsonl", "config.yaml", "steps.json",
            "README.md", "Modelfile", "entry.json", "attestation.intoto.json"} <= names
    assert not (tiny_q4.parent / ".staging").exists()


def test_report_sections(tiny_q4):
    r = json.loads((tiny_q4 / "report.json").read_text())
    assert r["schema"] == "slim.report/v1" and r["status"] == "ungated"   # probes=quick has no gates
    assert r["target"]["method"] == "q4_k_m" and r["parent"]["id"] == "tiny_llama"
    assert r["parent"]["digest"].startswith("sha256:")
    a = r["artifact"]
    assert a["format"] == "gguf" and a["bytes"] == (tiny_q4 / "model.gguf").stat().st_size
    assert "Q4_K" in a["tensor_types"] and 4 < a["bpw"] < 8
    # the size against the parent: GGUF file vs the parent's 16-bit safetensors, as on disk
    pdir = r["parent"]["dir"]
    from pathlib import Path
    par = sum(p.stat().st_size for p in Path(pdir).glob("*.safetensors"))
    vs = a["size_vs_parent"]
    assert vs["parent_weights_bytes"] == par == r["parent"]["weights_bytes"]
    assert vs["child_weights_bytes"] == a["bytes"] and vs["ratio"] == round(a["bytes"] / par, 4) < 1
    assert f"{100 * vs['ratio']:.1f}% of the parent's size" in (tiny_q4 / "report.md").read_text()
    f = r["metrics"]["fidelity"]
    for k in ("ppl_parent", "ppl_child", "ppl_ratio", "kld_mean", "kld_mean_stderr", "kld_p99",
              "top1_agreement", "delta_p_mean", "tokens"):
        assert f[k] is not None, k
    assert f["tokens"] == 4 * (128 // 2 - 1) and f["kld_mean"] >= 0
    assert 0 <= r["metrics"]["noise_floor"]["kld_mean"] < f["kld_mean"]
    assert r["fit"]["fits"] is True and r["speed_host"]["gen_tokens_per_s"] > 0
    assert r["signature"]["signed"] is True
    assert {s["id"] for s in r["steps"]} >= {"import_parent", "convert_gguf:import_parent",
                                              "imatrix:import_parent", "quantize_gguf:0"}


def test_gguf_carries_lineage(tiny_q4):
    from gguf import GGUFReader
    f = GGUFReader(str(tiny_q4 / "model.gguf")).fields
    assert f["general.base_model.0.name"].contents() == "tiny_llama"
    assert f["slim.method"].contents() == "q4_k_m"
    assert f["tokenizer.ggml.model"].contents() == "gpt2"
    report = json.loads((tiny_q4 / "report.json").read_text())
    assert f["slim.parent.digest"].contents() == report["parent"]["digest"]


def test_verify_catches_gguf_lineage_mismatch(tiny_q4, tmp_path):
    """A GGUF swapped for one naming another parent fails gguf_lineage (by name), even when
    the checker is handed the file directly."""
    from slim.verify import _verify_gguf_lineage
    want = json.loads((tiny_q4 / "report.json").read_text())["parent"]["digest"]
    assert _verify_gguf_lineage(tiny_q4, want)[0][0] == "PASS"
    bad = _verify_gguf_lineage(tiny_q4, "sha256:" + "0" * 64)
    assert bad[0][0] == "FAIL" and bad[0][1] == "gguf_lineage" and "slim.parent.digest" in bad[0][2]


def test_rebuild_is_fully_cached(tiny_q4, tiny_builds):
    from slim.build import run_build
    cfg = compose(TINY + ["method=q4_k_m", f"paths.builds={tiny_builds}"])
    out = run_build(cfg, quiet=True)
    steps = json.loads((out / "report.json").read_text())["steps"]
    assert all(s["cached"] for s in steps), [s["id"] for s in steps if not s["cached"]]


def test_plan_says_why(tiny_q4, tiny_builds, capsys):
    from slim.build import run_build
    cfg = compose(TINY + ["method=q4_k_m", f"paths.builds={tiny_builds}", "plan=true",
                          "calibration.seed=1"])
    run_build(cfg)
    out = capsys.readouterr().out
    assert "RUN    calibration_set" in out and "params.seed changed: 0 -> 1" in out
    assert "cached import_parent" in out


def test_verify_cli_passes_and_registry_lists(tiny_q4, tiny_builds):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "slim.verify", str(tiny_q4)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout
    r = subprocess.run([sys.executable, "-m", "slim.registry", "--builds", str(tiny_builds), "ls"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and tiny_q4.name in r.stdout and "signed+valid" in r.stdout


def test_gguf_loads_in_plain_llama_cpp(tiny_q4):
    import llama_cpp
    llm = llama_cpp.Llama(str(tiny_q4 / "model.gguf"), n_ctx=256, verbose=False)
    out = llm.create_chat_completion([{"role": "user", "content": "Hi"}], max_tokens=8,
                                     temperature=0)
    assert isinstance(out["choices"][0]["message"]["content"], str)


def test_gguf_header_reader_matches_gguf_package(tiny_q4):
    """Our header reader (used for stats, verify and validation) agrees with gguf.GGUFReader."""
    from gguf import GGUFReader

    from slim.models.gguf_header import read_gguf_header
    path = tiny_q4 / "model.gguf"
    r = GGUFReader(str(path))
    meta, tensors = read_gguf_header(path, {"slim.method", "general.base_model.count",
                                            "tokenizer.ggml.tokens"})
    assert [(t.name, t.tensor_type.name, int(t.n_elements), int(t.n_bytes)) for t in r.tensors] == \
        [(t.name, t.type_name, t.n_elements, t.n_bytes) for t in tensors]
    assert meta["slim.method"] == "q4_k_m" and meta["general.base_model.count"] == 1
    assert meta["tokenizer.ggml.tokens"] == r.fields["tokenizer.ggml.tokens"].contents()


def test_private_key_never_leaves_the_key_dir(tiny_q4):
    """After a signed build, neither the PEM nor the raw 32-byte private key appears anywhere in
    the build folder or the cache (reports, logs, events, step outputs)."""
    import os
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization

    from slim.signing.keys import key_paths, load_private_key
    priv_path, _ = key_paths(key_dir=os.environ["SLIM_KEY_DIR"])
    key = load_private_key(priv_path)
    pem = priv_path.read_bytes()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    body = b"".join(pem.splitlines()[1:-1])          # the base64 of the PKCS8 blob
    needles = [raw, body, raw.hex().encode()]
    roots = [tiny_q4, Path(os.environ["SLIM_CACHE_DIR"])]
    scanned = 0
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file() and not p.is_symlink():
                data = p.read_bytes()
                scanned += 1
                assert not any(n in data for n in needles), f"private key material in {p}"
    assert scanned > 10



def test_every_step_that_ran_records_its_peak_memory(tmp_path):
    """Peak RSS per step process (issue: real model sizes): on the result and in events.jsonl."""
    from slim.cache.store import ObjectStore
    from slim.executor import EventLog, Executor
    from slim.plan import Planner

    plan = Planner(compose(TINY + ["method=q4_k_m"])).build()
    log = EventLog(tmp_path / "events.jsonl")
    res = Executor(ObjectStore(tmp_path / "cache"), log, threads=1).run(
        {"probe_suite": plan.steps["probe_suite"]})
    r = res["probe_suite"]
    assert r.ran and r.peak_rss_bytes > 20 * 2**20   # a Python process importing slim
    fin = [e for e in log.events if e["event"] == "finished"]
    assert fin and fin[0]["peak_rss_bytes"] == r.peak_rss_bytes
    again = Executor(ObjectStore(tmp_path / "cache"), EventLog(None), threads=1).run(
        {"probe_suite": plan.steps["probe_suite"]})["probe_suite"]
    assert again.cached and again.peak_rss_bytes is None   # nothing ran: nothing measured


def test_report_says_how_probes_were_generated(tiny_q4):
    r = json.loads((tiny_q4 / "report.json").read_text())
    gen = r["metrics"]["probes"]["how"]["generation"]
    assert gen["child"]["batch_size"] == gen["parent"]["batch_size"] == 32
    assert gen["child"]["runtime"] == "llama.cpp"
    assert "32 sequences at a time" in (tiny_q4 / "report.md").read_text()


def test_report_md_has_the_peak_rss_column(tiny_q4):
    assert "peak RSS GiB" in (tiny_q4 / "report.md").read_text()


def test_new_build_envelope_verifies_with_securesystemslib(tiny_q4):
    """A real build's attestation passes securesystemslib's DSSE verification (not slim's code)."""
    import os
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    env = json.loads((tiny_q4 / "attestation.intoto.json").read_text())
    pub = serialization.load_pem_public_key((Path(os.environ["SLIM_KEY_DIR"]) / "default.pub").read_bytes())
    kid = json.loads((tiny_q4 / "report.json").read_text())["signature"]["key_id"]
    accepted = Envelope.from_dict(env).verify([SSlibKey.from_crypto(pub, keyid=kid)], 1)
    assert list(accepted) == [kid]
