"""``--allow-builds``: start a build from the form, as ``python -m slim key=choice ...`` in a
background process.

Every field is checked against the config choices that exist (``conf/<group>/*.yaml``) and
the command is an argument list (no shell), so the form can only ask for builds the CLI
could run from its own choices. Models that need a path (``hf``, ``gguf``) or have no
weights (architecture-only estimates) are not offered.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from slim.paths import CONF, ROOT

GROUPS = ("model", "method", "hardware", "probes", "calibration")
#: model sources the form can build without further input
BUILDABLE_SOURCES = ("tiny", "pypi_gguf")
DEFAULTS = {"model": "smollm2_135m", "method": "q4_k_m", "hardware": "apple8gb",
            "probes": "default", "calibration": "default"}


def choices() -> dict[str, list[str]]:
    """The choices of each config group the form offers, from conf/ (slim.config.catalog)."""
    from slim.config import catalog
    out = {}
    for g in GROUPS:
        names = catalog.names(g)
        if g == "model":
            names = [n for n in names if catalog.load(g, n).get("source") in BUILDABLE_SOURCES]
        out[g] = names
    return out


def max_threads() -> int:
    return max(1, os.cpu_count() or 1)


def validate_form(form: dict) -> tuple[dict, list[str]]:
    """(choices by group + threads, errors naming each bad field and what is allowed)."""
    ch = choices()
    picked: dict = {}
    errors = []
    for g in GROUPS:
        v = str(form.get(g) or "").strip()
        if v not in ch[g]:
            errors.append(f"{g}: {v!r} is not a choice (conf/{g}/): pick one of {', '.join(ch[g])}")
        else:
            picked[g] = v
    t = str(form.get("threads") or "1").strip()
    if not t.isdigit() or not 1 <= int(t) <= max_threads():
        errors.append(f"threads: {t!r} must be a whole number from 1 to {max_threads()}")
    else:
        picked["threads"] = int(t)
    return picked, errors


_COMPOSE_LOCK = threading.Lock()


def prepare(picked: dict, builds: Path) -> str:
    """Compose the config the CLI will, check it with the CLI's own validator (a method the
    tier cannot run, ...: raises SlimError before any process starts) and return the build
    folder name it will use."""
    from hydra import compose, initialize_config_dir

    import slim.config  # noqa: F401  (registers the schema)
    from slim.build import build_name
    from slim.config.validate import validate
    with _COMPOSE_LOCK, initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides(picked, builds))
    validate(cfg)
    return build_name(cfg)


def overrides(picked: dict, builds: Path) -> list[str]:
    return [f"{g}={picked[g]}" for g in GROUPS] + [f"threads={picked['threads']}",
                                                     f"paths.builds={Path(builds).resolve()}"]


class Job:
    """One build the studio started: its process, command and console log."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.id = uuid.uuid4().hex[:10]
        self.name, self.argv, self.log = name, argv, log
        self.started = time.time()
        self._fh = open(log, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=str(ROOT),
                                     env=dict(os.environ, SLIM_NO_PROGRESS="1"))

    def poll(self) -> int | None:
        rc = self.proc.poll()
        if rc is not None and not self._fh.closed:
            self._fh.close()
        return rc

    def log_tail(self, n: int = 4000) -> str:
        try:
            data = self.log.read_bytes()
        except OSError:
            return ""
        return data[-n:].decode("utf-8", "replace")

    def stop(self) -> None:
        if self.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.poll()


class Launcher:
    """Starts and remembers the studio's builds (logs under ``state_dir``)."""

    def __init__(self, builds: Path, state_dir: Path) -> None:
        self.builds = Path(builds)
        self.state_dir = Path(state_dir)
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, picked: dict) -> Job:
        name = prepare(picked, self.builds)
        with self._lock:
            for j in self.jobs.values():
                if j.name == name and j.poll() is None:
                    return j  # the same build is already running: follow it
            self.state_dir.mkdir(parents=True, exist_ok=True)
            argv = [sys.executable, "-m", "slim", *overrides(picked, self.builds)]
            job = Job(name, argv, self.state_dir / f"{name}-{int(time.time())}.log")
            self.jobs[job.id] = job
            return job

    def latest_for(self, name: str) -> Job | None:
        js = [j for j in self.jobs.values() if j.name == name]
        return max(js, key=lambda j: j.started) if js else None

    def stop_all(self) -> None:
        for j in list(self.jobs.values()):
            j.stop()
