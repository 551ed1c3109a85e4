"""A real SLURM cluster (Debian slurm-wlm + munge, one node, scripts/slurm_local.sh): a
``hydra/launcher=slurm`` sweep of three tiny members runs as SLURM array tasks sharing one
cache and one builds/ folder; every member verifies and no step key is computed twice.

Skips (saying why) only when SLURM cannot be started here: not root, or slurm-wlm/munge not
installed. With ``SLIM_REQUIRE_SLURM=1`` (set by .ci/run) those are failures instead.
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm_local.sh"
METHODS = ["q8_0", "q4_k_m", "q5_k_m"]
TINY = ["model=tiny_llama", "probes=quick", "calibration=small", "threads=1"]
SHARED = {"import_parent", "convert_gguf:import_parent", "fidelity_reference",
          "probes:parent", "probe_suite"}


def _cannot(why: str):
    if os.environ.get("SLIM_REQUIRE_SLURM") == "1":
        pytest.fail(f"SLURM required (SLIM_REQUIRE_SLURM=1) but {why}")
    pytest.skip(f"SLURM cannot be started here: {why}")


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65000:
            with socket.socket() as s2:
                try:
                    s2.bind(("127.0.0.1", port + 1))
                    return port
                except OSError:
                    continue
    return 16817


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    missing = [b for b in ("munged", "slurmctld", "slurmd", "sbatch", "squeue")
               if shutil.which(b) is None]
    if missing:
        _cannot(f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge; "
                f"bash .ci/run does it)")
    if os.geteuid() != 0:
        _cannot("not root (slurmd must run as root to start jobs)")
    d = tmp_path_factory.mktemp("slurm")
    env = dict(os.environ, SLIM_SLURM_PORT=str(_free_port_pair()), SLIM_SLURM_MEM_MB="12000")
    r = subprocess.run(["bash", str(SCRIPT), "start", str(d)], env=env, capture_output=True,
                       text=True, timeout=180)
    if r.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "stop", str(d)], env=env, capture_output=True)
        _cannot(f"scripts/slurm_local.sh start failed:\n{r.stdout}{r.stderr}")
    env["SLURM_CONF"] = str(d / "slurm.conf")
    yield d, env
    subprocess.run(["bash", str(SCRIPT), "stop", str(d)], env=env, capture_output=True,
                   timeout=120)


def _events(build: Path) -> list[dict]:
    return [json.loads(ln) for ln in (build / "events.jsonl").read_text().splitlines()]


@pytest.mark.timeout(1500)
def test_slurm_sweep_shares_cache_and_builds(slurm, tmp_path):
    d, env = slurm
    builds, cache = tmp_path / "builds", tmp_path / "cache"
    env = dict(env, SLIM_CACHE_DIR=str(cache), SLIM_KEY_DIR=str(tmp_path / "keys"),
               SLIM_MEMO_DIR=str(tmp_path / "memo"), SLIM_NO_PROGRESS="1")
    # the same launcher a user points at their cluster, sized for a 2-CPU test node
    cmd = [sys.executable, "-m", "slim", "-m", *TINY, f"method={','.join(METHODS)}",
           f"paths.builds={builds}", "hydra/launcher=slurm",
           "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
           "hydra.launcher.mem_gb=3", "hydra.launcher.timeout_min=20"]
    sweep = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    job_ids = set()
    deadline = time.time() + 1400
    while sweep.poll() is None and time.time() < deadline:
        q = subprocess.run(["squeue", "-h", "-o", "%i %T %j %N %R"], env=env,
                           capture_output=True, text=True)
        for line in q.stdout.splitlines():
            if line not in seen:
                seen.append(line)
                job_ids.add(line.split()[0])
        time.sleep(2)
    if sweep.poll() is None:
        sweep.kill()
    out = sweep.communicate()[0]
    after = subprocess.run(["squeue", "-t", "all", "-o", "%i %T %j %M %N"], env=env,
                           capture_output=True, text=True).stdout
    sacct = subprocess.run(["sacct", "--completion", "-o", "JobID,JobName,State,NodeList,Elapsed"],
                           env=env, capture_output=True, text=True)
    record = (f"$ {' '.join(cmd)}\n\n# squeue while the sweep ran\n" + "\n".join(seen)
              + f"\n\n# squeue -t all afterwards\n{after}\n# sacct --completion (jobcomp/filetxt)\n"
              + sacct.stdout)
    (tmp_path / "slurm-record.txt").write_text(record)
    print(record)
    assert sweep.returncode == 0, out[-6000:]

    # every member ran as a SLURM array task: squeue saw them, each completed
    tasks = {j for j in job_ids if "_" in j and "[" not in j}
    assert len({j.split("_")[0] for j in job_ids}) == 1, seen
    assert tasks, seen
    done = [ln.split()[0] for ln in after.splitlines() if " COMPLETED " in ln]
    array = next(iter(job_ids)).split("_")[0]
    assert sorted(j for j in done if j.startswith(f"{array}_")) == \
        [f"{array}_{i}" for i in range(3)], after

    members = sorted(p for p in builds.iterdir() if not p.name.startswith(("_", ".")))
    assert [m.name.split("-")[1] for m in members] == sorted(METHODS), members
    for m in members:
        v = subprocess.run([sys.executable, "-m", "slim.verify", str(m)], cwd=ROOT, env=env,
                           capture_output=True, text=True)
        assert v.returncode == 0, (m, v.stdout, v.stderr)
    assert not (builds / ".staging").exists()

    # no step key computed twice across the three jobs; the shared parent steps were
    # computed by one member and served from the cache to the other two
    started = collections.Counter()
    hits = collections.defaultdict(set)
    for m in members:
        for e in _events(m):
            if e["event"] == "started":
                started[e["key"]] += 1
            elif e["event"] == "cache_hit":
                hits[e["step"]].add(m.name)
    twice = {k: n for k, n in started.items() if n > 1}
    assert not twice, twice
    for step in SHARED:
        assert len(hits[step]) == 2, (step, dict(hits))
    js = json.loads(next((builds / "_sweeps").glob("*/summary.json")).read_text())
    assert js["complete"] and len(js["members"]) == 3
