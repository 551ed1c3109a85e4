"""The probe step decodes in batches, answers as one-at-a-time decoding does, and says how."""
from __future__ import annotations

import json

from slim.paths import DATA
from slim.steps.base import StepContext, check_params, parse_params


def run_step(tmp_path, gguf, batch_size: int, **extra) -> dict:
    from slim.steps import probe_run

    params = {"categories": ["behavioral/*", "safety/*"], "max_items": 2, "max_tokens": 12,
              "model_file": gguf.name, "batch_size": batch_size, **extra}
    out = tmp_path / f"out{batch_size}{''.join(f'_{k}{v}' for k, v in extra.items())}"
    out.mkdir()
    ctx = StepContext(step_id="probes:test", kind="probe_run",
                      params=parse_params("probe_run", params), raw_params=params,
                      inputs={"model": gguf.parent, "probe_data": DATA / "probes"},
                      out=out, threads=1, log=lambda m: None)
    probe_run.run(ctx)
    return json.loads((out / "probes.json").read_text())


def test_probe_step_batched_equals_one_at_a_time(tmp_path, tiny_gguf, monkeypatch):
    monkeypatch.setenv("SLIM_NO_PROGRESS", "1")
    one, many = run_step(tmp_path, tiny_gguf, 1), run_step(tmp_path, tiny_gguf, 4)
    assert len(one["results"]) >= 8
    assert [r["output"] for r in many["results"]] == [r["output"] for r in one["results"]]
    g = many["generation"]
    assert (g["runtime"], g["batch_size"], g["mode"], g["items"]) == \
        ("llama.cpp", 4, "batched", len(many["results"]))
    assert one["generation"]["mode"] == "one at a time" and g["seconds"] > 0
    assert g["flash_attn"] is True  # llama.cpp's default, recorded


def test_probe_step_flash_attn_off(tmp_path, tiny_gguf, monkeypatch):
    """flash_attn=false: the plain attention path, recorded; batched still equals one at a time
    and the answers equal the flash-attention ones on the tiny model (no near-ties there)."""
    monkeypatch.setenv("SLIM_NO_PROGRESS", "1")
    plain1 = run_step(tmp_path, tiny_gguf, 1, flash_attn=False)
    plain4 = run_step(tmp_path, tiny_gguf, 4, flash_attn=False)
    fa = run_step(tmp_path, tiny_gguf, 4)
    outs = [r["output"] for r in plain4["results"]]
    assert outs == [r["output"] for r in plain1["results"]]
    assert outs == [r["output"] for r in fa["results"]]
    assert plain4["generation"]["flash_attn"] is False


def test_probe_step_rejects_bad_batch_size():
    errs = check_params("probe_run", {"batch_size": 0}, "probes")
    assert errs and errs[0][0] == "probes.batch_size"
    errs = check_params("probe_run", {"flash_attn": "yes"}, "probes")
    assert errs and errs[0][0] == "probes.flash_attn"
