"""Hydra multirun through the SweepSummary callback (subprocess, tiny model)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model=tiny_llama", "probes=quick", "calibration=small"]
# `++` adds the callback, or keeps it where conf/config.yaml already declares it
CALLBACK = "++hydra.callbacks.sweep_summary._target_=slim.sweep.SweepSummary"


def slim_multirun(args: list[str], timeout: int = 1800) -> subprocess.CompletedProcess:
    env = dict(os.environ, SLIM_NO_PROGRESS="1")
    return subprocess.run([sys.executable, "-m", "slim", "-m", *args, CALLBACK], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def only_sweep_dir(builds: Path) -> Path:
    dirs = list((builds / "_sweeps").iterdir())
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_failed_member_is_summarised(tmp_path):
    """A plan-only member and a member that fails validation: Hydra stops after the batch
    (on_multirun_end never runs), yet the summary names both, the failure with its error."""
    p = slim_multirun(["model=tiny_llama,hf", "probes=quick", "calibration=small", "plan=true",
                       f"paths.builds={tmp_path}"], timeout=600)
    assert p.returncode != 0                      # the failed member fails the sweep
    sd = only_sweep_dir(tmp_path)
    js = json.loads((sd / "summary.json").read_text())
    st = {m["member"]: (m["status"], m["error"]) for m in js["members"]}
    assert st["tiny_llama-q4_k_m-apple8gb-probes_quick-calib_small"][0] == "plan only"
    assert st["hf-q4_k_m-apple8gb-probes_quick-calib_small"][0] == "failed"
    assert "model.path" in st["hf-q4_k_m-apple8gb-probes_quick-calib_small"][1]
    assert js["complete"] is True and js["expected"] == 2
    md = (sd / "summary.md").read_text()
    assert "hf-q4_k_m-apple8gb-probes_quick-calib_small" in md and "model.path" in md


@pytest.mark.timeout(1800)
def test_two_member_parallel_sweep_on_tiny_model(tmp_path):
    """Two members at once (joblib, 2 processes) on one fresh cache: the per-key lock makes
    one wait for the other's parent steps instead of computing them twice or corrupting them."""
    builds = tmp_path / "builds"
    env_cache = tmp_path / "cache"
    p = slim_multirun(TINY + ["method=q8_0,q4_k_m", f"paths.builds={builds}",
                              f"paths.cache={env_cache}", "hydra/launcher=joblib",
                              "hydra.launcher.n_jobs=2"])
    assert p.returncode == 0, p.stderr[-4000:]
    sd = only_sweep_dir(builds)
    for f in ("summary.md", "summary.csv", "summary.json", "frontier.png"):
        assert (sd / f).is_file(), f
    names = ["tiny_llama-q8_0-apple8gb-probes_quick-calib_small",
             "tiny_llama-q4_k_m-apple8gb-probes_quick-calib_small"]
    md = (sd / "summary.md").read_text()
    rows = {r["member"]: r for r in csv.DictReader((sd / "summary.csv").open())}
    assert set(rows) == set(names)
    for n in names:
        assert n in md
        r = rows[n]
        assert r["status"] == "ungated", r   # probes=quick has no gates
        assert r["signature"] == "signed+valid", r
        assert float(r["size_mb"]) > 0 and float(r["bpw"]) > 0 and r["kld_mean"] != ""
        assert (builds / n / "report.json").is_file()
    assert float(rows[names[1]]["size_mb"]) < float(rows[names[0]]["size_mb"])
    js = json.loads((sd / "summary.json").read_text())
    assert js["complete"] and js["expected"] == 2
    # parent steps (import, F16 conversion, calibration, imatrix, fidelity reference, parent
    # probes ...) were computed once: whichever member waited on the lock found them cached
    cached = sum(int(rows[n]["cached_steps"].split("/")[0]) for n in names)
    assert cached >= 4, [rows[n]["cached_steps"] for n in names]
    events = [json.loads(ln) for n in names for ln in (builds / n / "events.jsonl").open()]
    computed = [e["key"] for e in events if e["event"] == "finished"]
    assert computed and len(computed) == len(set(computed)), "a step was computed by both members"
    # the build folders verify
    for n in names:
        v = subprocess.run([sys.executable, "-m", "slim.verify", str(builds / n)], cwd=ROOT,
                           capture_output=True, text=True)
        assert v.returncode == 0, v.stdout[-2000:]
