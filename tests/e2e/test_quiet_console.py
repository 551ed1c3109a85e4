"""The terminal of a build: a line per step, progress bars and the summary. What libraries
print (llama.cpp's converter, transformers, C code) goes to the build's logs/, and to the
terminal as well with ``verbose=true``."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT, TINY

MAX_LINES = 40


def _slim(cache, builds, *extra) -> str:
    env = dict(os.environ, SLIM_CACHE_DIR=str(cache), SLIM_NO_PROGRESS="1")
    p = subprocess.run([sys.executable, "-m", "slim", *TINY, "threads=1", f"paths.builds={builds}",
                        *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    return p.stdout + p.stderr


def test_cold_tiny_build_prints_a_line_per_step_and_verbose_adds_library_logs(tmp_path):
    cache, builds = tmp_path / "cache", tmp_path / "builds"
    out = _slim(cache, builds)
    lines = out.splitlines()
    assert len(lines) <= MAX_LINES, f"{len(lines)} lines on the terminal:\n{out}"
    build = next(p for p in builds.iterdir() if not p.name.startswith("."))
    steps = json.loads((build / "steps.json").read_text())
    assert sum(1 for ln in lines if ln.lstrip().startswith("done ")) == len(steps)
    # the converter's own log is in logs/, not on the terminal
    conv = (build / "logs" / "convert_gguf_import_parent.log").read_text()
    assert "INFO:hf-to-gguf:" in conv
    assert "hf-to-gguf" not in out and "llama_model_loader" not in out

    # verbose=true: rerun the converter (drop its cache entry) and see its log on the terminal
    key = next(s["key"] for s in steps if s["id"] == "convert_gguf:import_parent")
    from slim.cache.store import ObjectStore
    shutil.rmtree(ObjectStore(cache).entry_path(key))
    loud = _slim(cache, builds, "verbose=true")
    assert "INFO:hf-to-gguf:" in loud
    assert "convert_gguf:import_parent" in loud


def test_verbose_must_be_a_boolean():
    p = subprocess.run([sys.executable, "-m", "slim", *TINY, "verbose=loud"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    assert "verbose" in p.stderr and "loud" in p.stderr


@pytest.mark.parametrize("verbose", [False, True])
def test_step_process_output_goes_to_its_log(tmp_path, capfd, verbose):
    """Library logging, prints and fd-level writes of a step process land in its log file;
    the terminal gets them only when verbose."""
    from slim.executor import run_step_process
    child = textwrap.dedent("""
        import logging, os, sys
        logging.basicConfig(level=logging.INFO)
        logging.getLogger("lib").info("library says hello")
        print("printed to stdout", flush=True)
        os.write(2, b"C code writes to fd 2\\n")
        fd = os.environ.get("SLIM_CONSOLE_FD")
        if fd:
            os.write(int(fd), b"progress bar\\n")
    """)
    log = tmp_path / "step.log"
    assert run_step_process([sys.executable, "-c", child], dict(os.environ), log, verbose) == 0
    text = log.read_text()
    for s in ("library says hello", "printed to stdout", "C code writes to fd 2"):
        assert s in text
    term = capfd.readouterr().err
    if verbose:
        assert "library says hello" in term and "C code writes to fd 2" in term
    else:
        assert "library says hello" not in term and "C code writes to fd 2" not in term
        assert "progress bar" in term and "progress bar" not in text
