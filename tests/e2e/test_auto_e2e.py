"""method=auto end to end on the tiny model: real candidate builds, a KLD cap that rejects the
lowest-bit one, a candidate whose build breaks, and the winner re-published with its reasons."""
from __future__ import annotations

import json

from tests.conftest import TINY, compose


def test_run_auto_end_to_end(tiny_builds, monkeypatch):
    import slim.build
    from slim.auto import run_auto
    from slim.errors import SlimError

    real = slim.build.run_build
    tried = []

    def run_build(cfg, *a, **k):
        tried.append(cfg.method.name)
        if cfg.method.name == "q8_0" and cfg.build_name is None:
            raise SlimError("simulated: this candidate's quantizer crashed")
        return real(cfg, *a, **k)

    monkeypatch.setattr(slim.build, "run_build", run_build)
    # q8_0 breaks; on the tiny model Q4_K_M's KLD is ~0.001 and Q2_K's ~0.007 (± <1e-4):
    # a 0.004 cap rejects Q2_K and accepts Q4_K_M
    cfg = compose(TINY + ["method=auto", "method.candidates=[q8_0,q4_k_m,q2_k]", "hardware=edge4gb",
                          "probes.gates.kld_max=0.004", f"paths.builds={tiny_builds}", "threads=1"])
    out = run_auto(cfg)
    assert tried == ["q8_0", "q4_k_m", "q2_k", "q4_k_m"]   # the failure did not stop the others
    r = json.loads((out / "report.json").read_text())
    a = r["auto"]
    assert out.name == "tiny_llama-auto-edge4gb-probes_quick-calib_small"
    assert a["winner"] == "q4_k_m" and a["winner_status"] == "accepted" and r["status"] == "accepted"
    assert "lowest mean KLD" in a["why"]
    rows = {c["method"]: c for c in a["candidates"]}
    assert rows["q8_0"]["status"] == "build failed" and "quantizer crashed" in rows["q8_0"]["reason"]
    assert rows["q2_k"]["status"] == "rejected" and rows["q2_k"]["failed_gates"][0].startswith("kld_max: fail")
    assert rows["q4_k_m"]["kld_mean"] < 0.004 < rows["q2_k"]["kld_mean"]
    md = (out / "report.md").read_text()
    assert "Winner: **q4_k_m** (accepted)" in md and "build failed" in md
