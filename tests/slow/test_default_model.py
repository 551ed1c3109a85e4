"""The embedded default model (SmolLM2-135M-Instruct): minutes per test, run with -m slow."""
from __future__ import annotations

import json

import pytest

from tests.conftest import compose

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_q4(tmp_path_factory):
    from slim.build import run_build
    builds = tmp_path_factory.mktemp("builds-default")
    cfg = compose(["method=q4_k_m", "hardware=apple8gb", "probes=quick", f"paths.builds={builds}"])
    return run_build(cfg, quiet=True)


def test_main_job_answers_paris(default_q4):
    import llama_cpp
    llm = llama_cpp.Llama(str(default_q4 / "model.gguf"), n_ctx=512, verbose=False, seed=0)
    out = llm.create_chat_completion(
        [{"role": "user", "content": "What is the capital of France?"}], max_tokens=32,
        temperature=0)
    assert "Paris" in out["choices"][0]["message"]["content"]


def test_main_job_report(default_q4):
    r = json.loads((default_q4 / "report.json").read_text())
    assert r["parent"]["distributed_as"]["quantization"] == "Q4_1"
    assert "Q4_1" in r["parent"]["provenance"]
    f = r["metrics"]["fidelity"]
    assert 1.0 <= f["ppl_ratio"] < 1.3 and 0 < f["kld_mean"] < 0.3
    assert r["metrics"]["noise_floor"]["kld_mean"] < f["kld_mean"]
    assert r["fit"]["fits"] and r["artifact"]["tensor_types"].get("Q4_K")
