"""ONNX for onnxruntime-genai on the tiny seeded model: export, evaluation in ONNX Runtime,
report, signing and verify, plain onnxruntime_genai loading, and the named builder failure."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY, compose

pytest.importorskip("onnxruntime_genai")

MSGS = [{"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def tiny_onnx(tiny_builds):
    from slim.build import run_build
    cfg = compose(TINY + ["method=onnx_int4", "hardware=cpu16gb", f"paths.builds={tiny_builds}",
                          "threads=1"])
    return run_build(cfg, quiet=True)


def _step_dir(build: Path, step_id: str) -> Path:
    """The cache entry of one of the build's steps (its data folder)."""
    from slim.cache.store import ObjectStore
    key = next(s["key"] for s in json.loads((build / "steps.json").read_text()) if s["id"] == step_id)
    return ObjectStore(None).get(key).data


def test_folder_and_report(tiny_onnx):
    m = tiny_onnx / "model"
    assert {"genai_config.json", "model.onnx", "model.onnx.data", "tokenizer.json",
            "chat_template.jinja"} <= {p.name for p in m.iterdir()}
    r = json.loads((tiny_onnx / "report.json").read_text())
    a = r["artifact"]
    assert a["format"] == "onnx" and a["engine"] == "onnxruntime-genai model builder"
    assert a["precision"] == "int4" and a["execution_provider"] == "cpu" and a["block_size"] == 32
    assert any(t.startswith("int4 MatMulNBits (block 32)") for t in a["tensor_types"])
    # int4 with one float32 scale per 32 weights: 5 bits per weight plus norms and rotary caches
    assert 4.9 < a["bpw"] < 6
    vs = a["size_vs_parent"]
    onnx_bytes = sum(p.stat().st_size for p in m.iterdir() if p.name.endswith((".onnx", ".onnx.data")))
    assert vs["child_weights_bytes"] == onnx_bytes and vs["ratio"] < 0.5
    f, nf = r["metrics"]["fidelity"], r["metrics"]["noise_floor"]
    assert f["runtime_child"] == f["runtime_parent"] == "onnxruntime-genai"
    assert nf["runtime_child"] == "onnxruntime-genai" and nf["runtime_parent"] == "transformers"
    # the fp32 export vs torch is float rounding; int4 costs orders of magnitude more
    assert 0 <= nf["kld_mean"] < 1e-6 and nf["top1_agreement"] > 0.99
    assert f["kld_mean"] > 100 * max(nf["kld_mean"], 1e-9)
    probes = r["metrics"]["probes"]
    assert probes["how"]["runtime"] == "onnxruntime-genai"
    assert r["fit"]["fits"] and r["speed_host"]["runtime"] == "onnxruntime-genai"
    ids = {s["id"] for s in r["steps"]}
    assert {"export_onnx:0", "export_onnx:import_parent", "fidelity:noise_floor"} <= ids
    assert "fp32 ONNX in onnxruntime-genai vs parent in torch" in (tiny_onnx / "report.md").read_text()
    card = (tiny_onnx / "README.md").read_text()
    assert "## Run with onnxruntime-genai" in card and "og.Generator" in card
    assert not (tiny_onnx / "Modelfile").exists()   # an Ollama Modelfile is for GGUF builds


def test_estimate_matches_the_export(tiny_onnx):
    """plan=true sizes ONNX int4 from the shapes alone within 1% of the exported graph + data
    (the graph file itself, a few KB, is the difference; 0.2% here, 0.3% on the default model)."""
    from slim.hardware import estimate_weights
    from slim.hardware.estimate import arch_from_hf_config, onnx_storage
    r = json.loads((tiny_onnx / "report.json").read_text())
    est = estimate_weights(arch_from_hf_config(Path(r["parent"]["dir"])), onnx_storage("int4", 32))
    built = r["artifact"]["size_vs_parent"]["child_weights_bytes"]
    assert abs(est["bytes"] - built) / built < 0.01, (est["bytes"], built)


def test_loads_in_plain_onnxruntime_genai(tiny_onnx):
    """The folder runs with onnxruntime_genai alone, greedy, as the model card shows, and the
    tokens are those slim's runtime generated."""
    import onnxruntime_genai as og

    from slim.runtimes import open_runtime
    model = og.Model(str(tiny_onnx / "model"))
    tok = og.Tokenizer(model)
    prompt = tok.apply_chat_template(json.dumps(MSGS), add_generation_prompt=True)
    ids = tok.encode(prompt)
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(ids) + 12, do_sample=False)
    gen = og.Generator(model, params)
    gen.append_tokens(ids)
    while not gen.is_done():
        gen.generate_next_token()
    plain = [int(t) for t in gen.get_sequence(0)[len(ids):]]
    assert plain
    with open_runtime(tiny_onnx / "model", threads=1) as rt:
        assert rt.chat_prompt_ids(MSGS) == [int(t) for t in ids]
        ours = rt.generate(rt.chat_prompt_ids(MSGS), 12)
    n = len(ours)
    assert plain[:n] == ours


def test_runtime_matches_torch_and_transformers_rendering(tiny_onnx):
    """The fp32 export of the parent in onnxruntime-genai against the HF parent in torch: the
    same chat rendering and token ids, log-probs equal to float rounding; prefill rows equal
    one-token-at-a-time decoding."""
    from slim.runtimes import open_runtime
    r = json.loads((tiny_onnx / "report.json").read_text())
    fp32 = _step_dir(tiny_onnx, "export_onnx:import_parent") / "model"
    with open_runtime(r["parent"]["dir"], threads=1) as hf, open_runtime(fp32, threads=1) as ort:
        assert ort.name == "onnxruntime-genai" and ort.vocab_size == hf.vocab_size
        assert ort.eog_ids == hf.eog_ids
        assert ort.render_chat(MSGS) == hf.render_chat(MSGS)
        assert ort.chat_prompt_ids(MSGS) == hf.chat_prompt_ids(MSGS)
        text = "The river runs past the old mill, and the children read long stories."
        assert ort.tokenize(text, add_bos=True) == hf.tokenize(text, add_bos=True)
        ids = hf.tokenize(text * 4, add_bos=False)[:64]
        a, b = hf.logprobs(ids), ort.logprobs(ids)
        assert a.shape == b.shape == (len(ids), hf.vocab_size)
        p = np.exp(a.astype(np.float64))
        assert (p * (a - b)).sum(-1).mean() < 1e-6
        dl = ort.decode_logprobs(ids[:40], ids[40:48])
        assert np.abs(dl - b[47]).max() < 1e-3
        assert ort.detokenize(ort.tokenize(text, add_bos=False)) == text


def test_verify_passes_and_catches_a_flipped_byte(tiny_onnx, tmp_path):
    from slim.verify import verify_build
    ok = verify_build(tiny_onnx)
    assert all(s != "FAIL" for s, _, _ in ok), [r for r in ok if r[0] == "FAIL"]
    assert any(c == "onnx_lineage" and s == "PASS" for s, c, _ in ok)
    bad = tmp_path / tiny_onnx.name
    shutil.copytree(tiny_onnx, bad)
    data = bad / "model" / "model.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    res = verify_build(bad)
    fails = [(c, d) for s, c, d in res if s == "FAIL"]
    assert any(c == "subject_digest" and "model/model.onnx.data" in d for c, d in fails), fails


def test_onnx_carries_lineage(tiny_onnx):
    from slim.models.onnx_folder import read_lineage
    from slim.verify import _verify_onnx_lineage
    r = json.loads((tiny_onnx / "report.json").read_text())
    meta = read_lineage(tiny_onnx / "model")
    assert meta["slim.parent.digest"] == r["parent"]["digest"]
    assert meta["slim.method"] == "onnx_int4" and meta["slim.parent.id"] == "tiny_llama"
    bad = _verify_onnx_lineage(tiny_onnx, "sha256:" + "0" * 64)
    assert bad[0][:2] == ("FAIL", "onnx_lineage")


def test_builder_failure_is_a_named_failure(tiny_onnx, tmp_path):
    """A folder the builder cannot read (corrupt weights): the step fails as export_onnx_failed
    with the builder's error line, recorded in events.jsonl; nothing enters the cache."""
    from slim.cache.store import ObjectStore
    from slim.errors import SlimError
    from slim.executor import EventLog, Executor
    from slim.steps.base import Step
    r = json.loads((tiny_onnx / "report.json").read_text())
    broken = tmp_path / "broken"
    shutil.copytree(r["parent"]["dir"], broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors at all")
    events = tmp_path / "events.jsonl"
    ex = Executor(ObjectStore(None), EventLog(events), threads=1)
    step = Step("export_onnx:0", "export_onnx", {"precision": "int4"}, files={"model": str(broken)})
    with pytest.raises(SlimError) as e:
        ex.run({step.id: step})
    assert e.value.reason == "export_onnx_failed"
    assert "onnxruntime-genai model builder could not export" in str(e.value)
    failed = [json.loads(ln) for ln in events.read_text().splitlines()
              if json.loads(ln)["event"] == "failed"]
    assert failed and failed[0]["reason"] == "export_onnx_failed" and failed[0]["step"] == "export_onnx:0"
    assert "could not export" in failed[0]["message"]


@pytest.mark.parametrize("params,key", [
    ({"precision": "fp16", "execution_provider": "cpu"}, "precision"),
    ({"precision": "int4", "block_size": 48}, "block_size"),
    ({"precision": "int4", "mixed_precision": "bogus:int4"}, "mixed_precision"),
    ({"precision": "fp32", "algo": "k_quant"}, "algo"),
    ({"precision": "int4", "symmetric": False}, "symmetric"),   # writes an unloadable model
])
def test_bad_params_rejected_before_work(params, key):
    from slim.steps.base import check_params
    errs = check_params("export_onnx", params, "method.stages[0].params")
    assert errs and errs[0][0] == f"method.stages[0].params.{key}", errs


def test_mixed_precision_sizes_as_built():
    """SmolLM2-135M's shapes, onnx_int4_mixed's params: 108.1 MiB, as the builder wrote it
    (113,365,376 bytes of model.onnx.data, onnxruntime-genai 0.18.0); plain int4 82.5 MiB."""
    from slim.hardware import estimate_weights
    from slim.hardware.deployed import deployed
    from slim.config import catalog
    arch = catalog.load("model", "llama3_1b")["arch"]   # a shape with untied embeddings too
    assert estimate_weights(arch, deployed(catalog.load("method", "onnx_int4"), arch)[1])["bytes"]
    smol = {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536,
            "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
            "vocab_size": 49152, "max_position_embeddings": 8192, "tie_word_embeddings": True}
    mixed = estimate_weights(smol, deployed(catalog.load("method", "onnx_int4_mixed"), smol)[1])
    plain = estimate_weights(smol, deployed(catalog.load("method", "onnx_int4"), smol)[1])
    assert abs(mixed["bytes"] - 113365376) / 113365376 < 0.005
    assert abs(plain["bytes"] - 86287616) / 86287616 < 0.005


def test_tiers_declare_onnx_as_data():
    """onnx_int4 (CPU execution provider) runs where a tier declares onnx_ep_cpu; a GPU tier's
    memory is the GPU's, so it is refused there with the capability named."""
    from slim.config.validate import validate
    from slim.errors import ConfigErrors
    validate(compose(TINY + ["method=onnx_int4", "hardware=edge4gb"]))
    with pytest.raises(ConfigErrors) as e:
        validate(compose(TINY + ["method=onnx_int4", "hardware=rtx4090_24gb"]))
    assert "onnx_ep_cpu" in str(e.value)


def test_batched_generation_equals_one_at_a_time(tiny_onnx):
    """Right-padded prompts of different lengths in one Generator give the tokens one-at-a-time
    decoding gives (on the default model: 48 of 48 probe answers equal, docs/onnx.md)."""
    from slim.runtimes import open_runtime
    convs = [MSGS, [{"role": "user", "content": "Hi"}],
             [{"role": "user", "content": "Name three colors of the rainbow, in one line."}]]
    with open_runtime(tiny_onnx / "model", threads=1) as rt:
        ids = [rt.chat_prompt_ids(c) for c in convs]
        assert len({len(i) for i in ids}) == 3
        single = [rt.generate(p, n) for p, n in zip(ids, (9, 5, 7))]
        done = []
        batched = rt.generate_batch(ids, [9, 5, 7], batch_size=8, on_done=done.append)
    assert batched == single and sorted(done) == [0, 1, 2]


def test_studio_reads_an_onnx_builds_shape(tmp_path):
    """The studio's fit on every tier needs the artifact's shape: for an ONNX build it comes
    from model/genai_config.json (there is no config.json in an onnxruntime-genai folder)."""
    from slim.hardware.fit import fit_report
    from slim.config import catalog
    from slim.studio.numbers import _artifact_arch
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "genai_config.json").write_text(json.dumps({"model": {
        "type": "llama", "context_length": 8192, "vocab_size": 49152, "decoder": {
            "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9,
            "num_key_value_heads": 3, "head_size": 64}}}))
    a = _artifact_arch(tmp_path, {"artifact": {"files": {}}})
    assert (a["num_hidden_layers"], a["num_key_value_heads"], a["head_dim"]) == (30, 3, 64)
    fit = fit_report(catalog.load("hardware", "cpu16gb"), 90_000_000, a)
    assert fit["kv_cache_bytes"] == 30 * 3 * 64 * 4096 * 2 * 2
