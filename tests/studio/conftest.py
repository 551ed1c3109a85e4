"""Studio fixtures: a builds folder with two real tiny builds (made once per session), a sweep
over them, and headless Chromium (Debian's chromium + chromium-driver through selenium)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import TINY, compose

#: the command-line overrides of a tiny build, as the CLI and the form take them
TINY_CLI = TINY + ["threads=1"]


@pytest.fixture(scope="session")
def studio_builds(tmp_path_factory, tiny_q4):
    """builds/ with the session's tiny q4_k_m build (copied) and a q8_0 build of the same
    parent, plus a sweep summary over both in builds/_sweeps/."""
    from slim.build import run_build
    from slim.sweep import summarise
    root = tmp_path_factory.mktemp("studio") / "builds"
    root.mkdir()
    shutil.copytree(tiny_q4, root / Path(tiny_q4).name)
    q8 = run_build(compose(TINY_CLI + ["method=q8_0", f"paths.builds={root}"]), quiet=True)
    summarise([root / Path(tiny_q4).name, q8], root / "_sweeps" / "2026-01-01_00-00-00", title="studio test")
    return root


@pytest.fixture(scope="session")
def browser():
    from slim.studio.browser import chromium_paths, headless_chromium
    if not all(chromium_paths()):
        if os.environ.get("SLIM_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium/chromedriver not found (apt-get install -y chromium chromium-driver)")
        pytest.skip("chromium/chromedriver not installed (apt-get install -y chromium chromium-driver)")
    driver = headless_chromium()
    driver.implicitly_wait(0)
    yield driver
    driver.quit()
