"""DVC remotes carry signed builds between machines: push a tracked build to a local-directory
remote (the commands are the same for s3://, gs://, ssh:// remotes), git clone the project
elsewhere, dvc pull, and the pulled build verifies against the signer's public key alone."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sweep.test_sweep_dvc import DVC, ROOT, _copy_tree, dvc


def git(*args, cwd):
    return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout


def _verify(build: Path, pub: Path) -> subprocess.CompletedProcess:
    # an empty key dir: only the public key handed over with --key is trusted
    env = dict(os.environ, SLIM_KEY_DIR=str(build.parent / "no-keys"))
    return subprocess.run([sys.executable, "-m", "slim.verify", str(build), "--key", str(pub),
                           "--no-parent"], cwd=ROOT, env=env, capture_output=True, text=True)


def _pub_key() -> Path:
    pubs = sorted(Path(os.environ["SLIM_KEY_DIR"]).glob("*.pub"))
    assert pubs, "the session's builds were signed with a key in SLIM_KEY_DIR"
    return pubs[0]


def test_push_clone_pull_verify(tiny_q4, tmp_path):
    """A DVC project tracking one signed build (``dvc add``): push, clone, pull, verify."""
    a, remote = tmp_path / "a", tmp_path / "remote"
    (a / "builds").mkdir(parents=True)
    git("init", "-q", cwd=a)
    dvc("init", "-q", cwd=a)
    dvc("config", "core.analytics", "false", cwd=a)
    shutil.copytree(tiny_q4, a / "builds" / tiny_q4.name)
    dvc("add", f"builds/{tiny_q4.name}", cwd=a)
    dvc("remote", "add", "-d", "shared", str(remote), cwd=a)
    git("add", "-A", cwd=a)
    git("commit", "-qm", "track a signed build", cwd=a)
    push = dvc("push", cwd=a).stdout
    assert "pushed" in push, push
    assert any(remote.rglob("*")), "nothing in the remote"

    b = tmp_path / "b"
    git("clone", "-q", str(a), str(b), cwd=tmp_path)
    assert not (b / "builds" / tiny_q4.name).exists()       # git carries only the .dvc file
    pull = dvc("pull", cwd=b).stdout
    assert "fetched" in pull or "added" in pull, pull
    pulled = b / "builds" / tiny_q4.name
    v = _verify(pulled, _pub_key())
    assert v.returncode == 0 and "VERIFIED" in v.stdout, v.stdout + v.stderr
    assert dvc("status", "-c", cwd=b).stdout.strip().endswith("in sync."), "remote out of sync"
    # a tampered pull is caught: slim's signature, not DVC, is the trust anchor
    (pulled / "report.md").unlink()   # unlink first: never write through a DVC cache link
    (pulled / "report.md").write_text("# all gates pass\n")
    assert _verify(pulled, _pub_key()).returncode != 0


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_pipeline_outs_push_and_pull_into_a_fresh_clone(tmp_path):
    """This repository's own pipeline: dvc repro one CI target, push its outs and run-cache,
    git clone, dvc pull: the clone has the signed build without rebuilding it."""
    a, remote = tmp_path / "a", tmp_path / "remote"
    _copy_tree(a)
    target = "tiny_llama-q8_0-apple8gb"
    dvc("remote", "add", "-d", "shared", str(remote), cwd=a)
    dvc("repro", f"ci@{target}", cwd=a)
    git("add", "dvc.lock", ".dvc/config", cwd=a)
    git("commit", "-qm", "lock", cwd=a)
    dvc("push", "--run-cache", cwd=a)
    b = tmp_path / "b"
    git("clone", "-q", str(a), str(b), cwd=tmp_path)
    dvc("pull", "--run-cache", f"ci@{target}", cwd=b)
    assert (b / "builds/_dvc/ci/metrics" / f"{target}.json").is_file()
    v = _verify(b / "builds" / target, _pub_key())
    assert v.returncode == 0, v.stdout + v.stderr
    st = dvc("status", f"ci@{target}", cwd=b).stdout
    assert "up to date" in st, st
    assert DVC.is_file()
