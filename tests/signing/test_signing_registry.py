from __future__ import annotations

import json

from slim.registry import load_entries, main as registry_main, write_entry
from slim.report.headline import headline_retention
from slim.report.card import render_modelfile, write_model_card


def test_write_entry_shape(make_build, key_dir):
    d = make_build("q4", sign=False)
    e = json.loads((d / "entry.json").read_text())
    assert set(e) == {"name", "parent_id", "parent_digest", "parent_build", "method", "hardware", "probes",
                      "format", "bytes", "bpw", "headline_retention", "kld_mean", "status", "created", "fits"}
    assert e["name"] == "q4" and e["method"] == "q4_k_m" and e["fits"] is True and e["format"] == "gguf"
    assert abs(e["headline_retention"] - (0.97 + 0.91) / 2) < 1e-12   # None categories ignored
    assert e["kld_mean"] == 0.0123
    report = json.loads((d / "report.json").read_text())
    again = write_entry(d, report)
    assert again["created"] == e["created"]          # stable on rewrite
    report["metrics"]["probes"]["categories"] = {"a": {"retention": None}}
    assert headline_retention(report) is None


def _populate(make_build):
    make_build("q8", method="q8_0")
    make_build("q4", method="q4_k_m", status="rejected")
    make_build("wanda50", gguf=False, method="wanda50")
    make_build("wanda50_q4", parent_build="wanda50", method="wanda50_q4_k_m")
    make_build("raw", sign=False, method="q5_k_m")


def test_ls_groups_and_signature_state(make_build, key_dir, capsys):
    _populate(make_build)
    # tamper one signed build
    g = make_build.builds / "q8" / "model.gguf"
    g.write_bytes(g.read_bytes() + b"!")
    assert registry_main(["--builds", str(make_build.builds), "ls"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("parent smollm2_135m (sha256 ")
    assert "5 build(s)" in lines[0]
    header = lines[1].split()
    assert header == ["name", "method", "hardware", "size", "bpw", "retention", "KLD", "fits", "status", "signature"]
    row = {l.split()[0]: l for l in lines[3:] if l.strip()}
    assert row["q4"].rstrip().endswith("signed+valid") and "rejected" in row["q4"]
    assert row["q8"].rstrip().endswith("signed+INVALID")
    assert row["raw"].rstrip().endswith("unsigned")
    assert "<- wanda50" in row["wanda50_q4"] and row["wanda50_q4"].rstrip().endswith("signed+valid")
    assert "0.940" in row["q4"] and "0.0123" in row["q4"] and "yes" in row["q4"]


def test_lineage_tree(make_build, key_dir, capsys):
    _populate(make_build)
    assert registry_main(["--builds", str(make_build.builds), "lineage", "wanda50_q4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("smollm2_135m (sha256 ")
    top = [l for l in out[1:] if l[:4] in ("├── ", "└── ")]
    assert {l[4:].lstrip("*+ ").split()[0] for l in top} == {"q4", "q8", "raw", "wanda50"}
    wline = next(i for i, l in enumerate(out) if "wanda50  [" in l)
    assert "+ wanda50" in out[wline]
    child = out[wline + 1]
    assert child.strip().startswith("└── * wanda50_q4") and child.startswith(("│   ", "    "))


def test_show(make_build, key_dir, capsys):
    _populate(make_build)
    assert registry_main(["--builds", str(make_build.builds), "show", "q4"]) == 0
    out = capsys.readouterr().out
    assert "build q4" in out and "signed+valid" in out and "failed gates: kld_mean" in out
    assert "behavioral/cat0" in out
    assert registry_main(["--builds", str(make_build.builds), "show", "nope"]) == 2
    assert registry_main(["--builds", str(make_build.builds / "missing"), "ls"]) == 2


def test_load_entries_falls_back_to_report(make_build, key_dir):
    d = make_build("q4", sign=False)
    (d / "entry.json").unlink()
    (e,) = load_entries(make_build.builds)
    assert e["name"] == "q4" and e["method"] == "q4_k_m"


def test_model_card_and_modelfile(make_build, key_dir):
    d = make_build("q4", sign=False, status="rejected")
    text = (d / "README.md").read_text()
    front = text.split("---")[1]
    assert 'base_model: "HuggingFaceTB/SmolLM2-135M-Instruct"' in front
    assert "base_model_relation: quantized" in front
    assert 'license: "apache-2.0"' in front
    assert '- "slim"' in front and '- "gguf"' in front and '- "q4_k_m"' in front
    assert "| perplexity ratio | 1.0380 |" in text
    assert "| behavioral/cat0 | 20 |" in text and "97.0%" in text
    assert "failed gate(s): `kld_mean`" in text
    assert "python -m slim.verify builds/q4" in text
    report = json.loads((d / "report.json").read_text())
    del report["parent"]["hf_repo"]
    p = write_model_card(d, report)
    assert 'base_model: "smollm2_135m"' in p.read_text()
    report["method"] = {"base_model_relation": "finetune"}    # as a distill YAML declares it
    assert "base_model_relation: finetune" in write_model_card(d, report).read_text()
    mf = (d / "Modelfile").read_text()
    assert "FROM ./model.gguf" in mf and 'PARAMETER stop "<|im_end|>"' in mf and "TEMPLATE" in mf
    report["parent"]["id"] = "llama"
    report["target"]["model"] = "llama"
    del report["parent"]["chat_format"]     # stops come from the model YAML's chat_format only
    bare = render_modelfile(report)
    assert "FROM ./model.gguf" in bare and "PARAMETER stop" not in bare and "TEMPLATE" not in bare
    go = render_modelfile(report, chat_template="{{ .Prompt }}", stop=["</s>"])
    assert 'TEMPLATE """{{ .Prompt }}"""' in go and 'PARAMETER stop "</s>"' in go


def test_ls_without_trusted_keys(make_build, key_dir, tmp_path, capsys, monkeypatch):
    make_build("q4")
    monkeypatch.setenv("SLIM_KEY_DIR", str(tmp_path / "empty_keys"))
    assert registry_main(["--builds", str(make_build.builds), "ls"]) == 0
    assert "signed (no trusted keys)" in capsys.readouterr().out
