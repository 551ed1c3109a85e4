"""llama.cpp's IQ types as methods: ftype numbers, the importance-matrix refusal at validation,
and the weight-free size model against the files llama.cpp writes."""
from __future__ import annotations

import pytest

from tests.conftest import TINY, compose

IQ_METHODS = ["iq4_xs", "iq4_nl", "iq3_m", "iq3_xxs", "iq2_m", "iq2_xs"]
#: llama.cpp refuses these without an importance matrix (their default tensor type needs one)
NEED_IMATRIX = {"iq3_xxs", "iq2_m", "iq2_xs"}


def test_ftypes_are_llama_cpp_s():
    import llama_cpp

    from slim.steps.quantize_gguf import FTYPES
    for name, value in FTYPES.items():
        assert getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{name}") == value, name


@pytest.mark.parametrize("method", IQ_METHODS)
def test_imatrix_false_refused_only_where_llama_cpp_needs_one(method):
    from slim.config import catalog
    from slim.steps.base import check_params

    st = catalog.load("method", method)["stages"][0]
    assert st["kind"] == "quantize_gguf" and st["params"]["imatrix"] is True
    errs = check_params("quantize_gguf", {**st["params"], "imatrix": False},
                        "method.stages[0].params")
    if method in NEED_IMATRIX:
        assert len(errs) == 1, errs
        key, why = errs[0]
        assert key == "method.stages[0].params.imatrix" and st["params"]["type"] in why
    else:
        assert errs == []


def test_refusal_is_collected_with_other_errors():
    from slim.config.validate import validate
    from slim.errors import ConfigErrors

    cfg = compose(TINY + ["method=iq2_xs", "method.stages.0.params.imatrix=false",
                          "kv_cache=q5_1", "probes.max_tokens=0"])
    with pytest.raises(ConfigErrors) as e:
        validate(cfg)
    keys = [k for k, _ in e.value.errors]
    assert "method.stages[0].params.imatrix" in keys and "kv_cache" in keys \
        and "probes.max_tokens" in keys, e.value.errors
    assert "IQ2_XS" in str(e.value)


def test_size_model_follows_llama_cpp_fallbacks_on_576_wide_rows():
    """SmolLM2's 576-wide rows cannot hold 256-wide IQ blocks: llama.cpp falls back to IQ4_NL
    (tensor_type_fallback), the tied output to Q8_0; its 1536-wide ffn_down keeps the IQ type."""
    from slim.hardware.estimate import gguf_tensor_types
    from slim.planview import model_arch

    arch = model_arch(compose(["model=llama3_8b"]))      # 4096-wide: no fallback
    smol = model_arch(compose([]))                       # the default model: 576-wide
    for ft, main in (("iq2_xs", "IQ2_XS"), ("iq3_xxs", "IQ3_XXS"), ("iq4_xs", "IQ4_XS"),
                     ("iq2_m", "IQ2_S"), ("iq3_m", "IQ3_S")):
        big = {n: t for n, _, _, t in gguf_tensor_types(arch, ft, True)}
        small = {n: t for n, _, _, t in gguf_tensor_types(smol, ft, True)}
        assert big["blk.10.ffn_up.weight"] == main
        assert small["blk.10.ffn_up.weight"] == "IQ4_NL"
        assert small["blk.10.ffn_down.weight"] in (main, "Q2_K", "IQ3_S", "Q4_K")
        assert small["token_embd.weight"] == "Q8_0"
    assert {n: t for n, _, _, t in gguf_tensor_types(arch, "iq3_m", True)}[
        "blk.0.attn_v.weight"] == "Q4_K"


@pytest.mark.parametrize("method", IQ_METHODS)
def test_size_model_matches_the_file_llama_cpp_writes(method):
    """plan=true's per-tensor types and bytes against the tiny model's real IQ file."""
    from slim.hardware.deployed import deployed
    from slim.hardware.estimate import estimate_weights, gguf_tensor_types
    from slim.models.gguf_header import read_gguf_header
    from slim.planview import model_arch
    from tests.methods.conftest import build_stages

    gguf, plan, _ = build_stages(method)
    cfg = compose(TINY + [f"method={method}"])
    arch = model_arch(cfg)
    _, tensors = read_gguf_header(gguf)
    built = {t.name: t.type_name for t in tensors}
    st = cfg.method.stages[0].params
    want = {n: t for n, _, _, t in gguf_tensor_types(arch, st.type.lower(), st.imatrix)}
    assert {n: built[n] for n in want} == want
    from omegaconf import OmegaConf
    est = estimate_weights(*deployed(OmegaConf.to_container(cfg.method, resolve=True), arch))
    assert est["bytes"] == sum(t.n_bytes for t in tensors)


@pytest.mark.parametrize("ftype,gib", [
    # llama.cpp tools/perplexity README, LLaMA 3 8b scoreboard (imatrix rows), "Model size [GiB]"
    ("iq4_nl", 4.35), ("iq4_xs", 4.14), ("iq3_m", 3.53), ("iq3_xxs", 3.05), ("iq2_m", 2.74)])
def test_llama3_8b_iq_sizes_match_llama_cpp_s_published_files(ftype, gib):
    from slim.hardware.estimate import estimate_weights, gguf_storage
    from slim.planview import model_arch

    est = estimate_weights(model_arch(compose(["model=llama3_8b"])), gguf_storage(ftype, True))
    assert est["bytes"] / 2**30 == pytest.approx(gib, rel=0.01)
