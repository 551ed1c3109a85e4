"""The environment a step process starts with: OpenMP's wait policy is the step's to choose.

llama.cpp's CPU backend is built on OpenMP and meets at a barrier after every op: passive
waiting there made batched decoding at 2 threads slower than at one. Only steps that declare
``OMP_PASSIVE`` (torch token-by-token generation on shared CPUs) get it.
"""
from __future__ import annotations

import pytest

import slim.executor as ex_mod
from slim.cache.store import ObjectStore
from slim.errors import StepFailed
from slim.executor import EventLog, Executor, Resolved
from slim.steps.base import Step


@pytest.mark.parametrize("kind,passive", [("distill", True), ("student", True), ("lowrank", True),
                                          ("probe_run", False), ("fidelity_compare", False),
                                          ("imatrix", False)])
def test_wait_policy_per_step(kind, passive, tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    seen = {}

    def fake(argv, env, log_path, verbose):
        seen.update(env)
        return 3

    monkeypatch.setattr(ex_mod, "run_step_process", fake)
    ex = Executor(ObjectStore(tmp_path / "cache"), EventLog(None), threads=2)
    step = Step(kind, kind)
    r = Resolved(step=step, key="0" * 16, material={}, cached=False, why=[])
    with pytest.raises(StepFailed):
        ex._subprocess(step, r, {}, tmp_path / "out")
    assert seen["OMP_NUM_THREADS"] == "2"
    assert (seen.get("OMP_WAIT_POLICY") == "PASSIVE") is passive
