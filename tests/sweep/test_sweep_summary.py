"""Sweep summary over fake build folders: every output exists and names every member."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sweep_fakes import METHODS, fake_build  # noqa: E402

from slim import sweep  # noqa: E402


@pytest.fixture()
def fake_sweep(tmp_path):
    root = tmp_path / "builds"
    dirs = [fake_build(root, m, status="rejected" if m == "q2_k" else "accepted") for m in METHODS]
    failed = {"name": "smollm2_135m-gptq_w4-apple8gb", "build_dir": str(root / "smollm2_135m-gptq_w4-apple8gb"),
              "job_status": "failed", "error": "SlimError: no such method",
              "target": {"model": "smollm2_135m", "method": "gptq_w4", "hardware": "apple8gb"}}
    return root, dirs, failed


def test_summarise_writes_every_output_naming_every_member(fake_sweep, tmp_path):
    _, dirs, failed = fake_sweep
    out = tmp_path / "out"
    summ = sweep.summarise(list(dirs) + [failed], out, title="fake")
    for f in sweep.OUTPUT_FILES:
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    names = [d.name for d in dirs] + [failed["name"]]
    md = (out / "summary.md").read_text()
    rows = list(csv.DictReader((out / "summary.csv").open()))
    js = json.loads((out / "summary.json").read_text())
    for n in names:
        assert n in md
    assert [r["member"] for r in rows] == names
    assert [m["member"] for m in js["members"]] == names
    assert (out / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summ["plot_panels"] == ["behavioral_retention", "one_minus_kld"]
    # the failed member is listed with its error, not plotted
    bad = next(r for r in rows if r["member"] == failed["name"])
    assert bad["status"] == "failed" and "no such method" in bad["error"]
    assert "no such method" in md


def test_summary_values_and_frontier(fake_sweep, tmp_path):
    _, dirs, _ = fake_sweep
    summ = sweep.summarise(dirs, tmp_path / "out", verify=False)
    by = {r["member"]: r for r in summ["members"]}
    q4 = by["smollm2_135m-q4_k_m-apple8gb"]
    assert q4["size_mb"] == pytest.approx(85.0)
    assert q4["bpw"] == 4.9 and q4["kld_mean"] == 0.045 and q4["ppl_ratio"] == 1.05
    assert q4["top1_agreement"] == 0.91 and q4["fits"] is True
    # the headline averages the behavioral categories only (safety/leakage are gated apart)
    assert q4["behavioral_retention"] == pytest.approx((0.93 + 0.92) / 2)
    assert set(q4["retention"]) == {"behavioral/arithmetic", "behavioral/factual",
                                    "safety/benign", "leakage/canary", "leakage/system_secret"}
    assert by["smollm2_135m-q2_k-apple8gb"]["fits"] is False
    assert by["smollm2_135m-q2_k-apple8gb"]["status"] == "rejected"
    # q6_k is larger than q5_k_m and retains less: off the retention frontier
    front = summ["frontier"]["behavioral_retention"]
    assert "smollm2_135m-q6_k-apple8gb" not in front
    assert "smollm2_135m-q5_k_m-apple8gb" in front and "smollm2_135m-q2_k-apple8gb" in front
    # KLD falls monotonically with size in the fakes: every member is on that frontier
    assert len(summ["frontier"]["one_minus_kld"]) == len(dirs)
    header = (tmp_path / "out" / "summary.csv").read_text().splitlines()[0].split(",")
    assert "retention/safety/benign" in header and "one_minus_kld" in header


def test_pareto_front():
    pts = [(10, 0.9), (5, 0.5), (7, 0.95), (12, 0.95), (5, 0.4), (20, 0.99)]
    assert sweep.pareto_front(pts) == [1, 2, 5]


def test_unsigned_and_signed_states(fake_sweep, tmp_path):
    _, dirs, _ = fake_sweep
    summ = sweep.summarise(dirs[:1], tmp_path / "out")
    assert summ["members"][0]["signature"] == "unsigned"


def test_missing_and_unreadable_builds(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "report.json").write_text("{not json")
    summ = sweep.summarise([tmp_path / "absent", tmp_path / "broken"], tmp_path / "out")
    st = {r["member"]: r["status"] for r in summ["members"]}
    assert st == {"absent": "no build", "broken": "unreadable"}
    assert (tmp_path / "out" / "frontier.png").is_file()   # an explanatory empty plot


def test_metrics_file_for_dvc(fake_sweep, tmp_path):
    _, dirs, _ = fake_sweep
    m = sweep.write_metrics(dirs[0], tmp_path / "m" / "x.json")
    on_disk = json.loads((tmp_path / "m" / "x.json").read_text())
    assert on_disk == json.loads(json.dumps(m))
    assert on_disk["build"] == dirs[0].name and on_disk["size_mb"] == pytest.approx(145.0)
    assert not (dirs[0] / "x.json").exists()          # nothing added to the (signed) build folder


def test_resummarise_sweep_dir_marks_unreported_members(fake_sweep, tmp_path):
    _, dirs, _ = fake_sweep
    sd = tmp_path / "sweep"
    exp = [{"overrides": [f"method={d.name.split('-')[1]}"]} for d in dirs[:3]]
    sd.mkdir()
    (sd / sweep.EXPECTED_FILE).write_text(json.dumps({"members": exp}))
    for i, d in enumerate(dirs[:2]):
        (sd / str(i)).mkdir()
        (sd / str(i) / sweep.MEMBER_FILE).write_text(json.dumps(
            {"name": d.name, "build_dir": str(d), "num": i, "job_status": "completed"}))
    partial = sweep.summarise_sweep(sd)
    assert partial["complete"] is False and partial["reported"] == 2
    final = sweep.summarise_sweep(sd, final=True)
    assert [r["status"] for r in final["members"]] == ["accepted", "accepted", "not run"]
    assert "INCOMPLETE" in (sd / "summary.md").read_text()


def test_targets_from_params():
    root = Path(__file__).resolve().parents[2]
    names = sweep.targets("ci", root / "params.yaml")
    assert names and all(n.startswith("tiny_llama-") for n in names)
