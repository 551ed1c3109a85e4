"""dvc.yaml: stage structure (fast), and repro / up-to-date / one-stage rerun (slow)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DVC = Path(sys.executable).with_name("dvc")


def dvc(*args, cwd=ROOT, check=True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               SLIM_NO_PROGRESS="1", DVC_NO_ANALYTICS="1")
    p = subprocess.run([str(DVC), *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=3000)
    if check:
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def test_stages_and_targets():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["ci"] and all(t["model"] == "tiny_llama" for t in params["ci"].values())
    assert {t["method"] for t in params["ci"].values()} >= {"q8_0", "q4_k_m"}
    assert params["model"] == "smollm2_135m" and params["method"] == "q4_k_m"
    out = dvc("stage", "list").stdout
    for name in params["ci"]:
        assert f"ci@{name}" in out
    assert "ci-summary" in out and "main" in out
    # each CI stage depends on its own method YAML only, and on the code and data
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["ci"]["do"]
    assert "conf/method/${item.method}.yaml" in spec["deps"]
    assert {"slim", "data", "conf/config.yaml"} <= set(spec["deps"])
    assert spec["outs"] == ["builds/${key}"]
    # bytecode written under slim/ must not change the `slim` dependency
    ignore = (ROOT / ".dvcignore").read_text()
    assert "__pycache__/" in ignore and "*.pyc" in ignore


def _copy_tree(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dst, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "t"],
                   cwd=dst, check=True)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_repro_up_to_date_and_one_stage_rerun(tmp_path):
    repo = tmp_path / "repo"
    _copy_tree(repo)
    def repro() -> str:
        p = dvc("repro", "ci-summary", cwd=repo)
        return p.stdout + p.stderr          # slim's step log goes to stderr

    first = repro()
    assert "Running stage 'ci@tiny_llama-q8_0-apple8gb'" in first
    assert "Running stage 'ci@tiny_llama-q4_k_m-apple8gb'" in first
    second = repro()
    assert "Running stage" not in second and "up to date" in second
    m = dvc("metrics", "show", cwd=repo).stdout
    assert "tiny_llama-q4_k_m-apple8gb" in m and "kld_mean" in m
    f = repo / "conf" / "method" / "q4_k_m.yaml"
    f.write_text(f.read_text() + "# touched\n")
    third = repro()
    assert "Running stage 'ci@tiny_llama-q4_k_m-apple8gb'" in third
    assert "Running stage 'ci@tiny_llama-q8_0-apple8gb'" not in third
    assert "cached import_parent" in third and "cached probes:parent" in third
    for name in ("tiny_llama-q8_0-apple8gb", "tiny_llama-q4_k_m-apple8gb"):
        v = subprocess.run([sys.executable, "-m", "slim.verify", str(repo / "builds" / name)],
                           capture_output=True, text=True)
        assert v.returncode == 0, v.stdout[-2000:]
    assert (repo / "builds/_dvc/ci/summary/frontier.png").is_file()
    dvc("plots", "show", "-o", str(tmp_path / "plots"), cwd=repo)
    assert (tmp_path / "plots" / "index.html").is_file()
