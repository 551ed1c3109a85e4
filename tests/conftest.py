"""Shared fixtures: isolated cache and key dirs, Hydra compose, one tiny build per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model=tiny_llama", "probes=quick", "calibration=small"]


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("slim-env")
    os.environ.setdefault("SLIM_CACHE_DIR", str(base / "cache"))
    os.environ.setdefault("SLIM_MEMO_DIR", str(base / "memo"))
    os.environ["SLIM_KEY_DIR"] = str(base / "keys")
    os.environ["SLIM_NO_PROGRESS"] = "1"
    yield


def compose(overrides: list[str] | None = None):
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    import slim.config  # noqa: F401
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hcompose(config_name="config", overrides=list(overrides or []))


@pytest.fixture(scope="session")
def tiny_builds(tmp_path_factory):
    return tmp_path_factory.mktemp("builds")


@pytest.fixture(scope="session")
def tiny_q4(tiny_builds):
    """A complete q4_k_m build of the tiny model (shared by the e2e tests)."""
    from slim.build import run_build
    cfg = compose(TINY + ["method=q4_k_m", f"paths.builds={tiny_builds}"])
    return run_build(cfg, quiet=True)
