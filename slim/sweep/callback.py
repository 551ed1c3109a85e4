"""The Hydra callback that records every member of a multirun and summarises the sweep."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from slim.fileio import write_json
from slim.sweep.summary import EXPECTED_FILE, MEMBER_FILE, summarise_sweep


def _builds_root(cfg) -> Path:
    p = Path(str(cfg.paths.builds)).expanduser()
    if p.is_absolute():
        return p
    try:
        cwd = Path(str(cfg.hydra.runtime.cwd))
    except Exception:  # noqa: BLE001
        cwd = Path.cwd()
    return cwd / p


def member_record(config: DictConfig, job_return=None, seconds: float | None = None) -> dict:
    """What a sweep needs to know about one member, from its job config."""
    from slim.build import build_name
    name = build_name(config)
    rec = {"name": name, "build_dir": str(_builds_root(config) / name),
           "target": {k: str(OmegaConf.select(config, f"{k}.name", default=None))
                      for k in ("model", "method", "hardware", "probes", "calibration")},
           "num": OmegaConf.select(config, "hydra.job.num", default=None),
           "overrides": list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or []),
           "seconds": round(seconds, 2) if seconds is not None else None,
           "job_status": "completed", "error": None, "host": os.uname().nodename, "pid": os.getpid(),
           "plan_only": bool(OmegaConf.select(config, "plan", default=False))}
    if job_return is not None:
        status = getattr(getattr(job_return, "status", None), "name", "UNKNOWN")
        if status != "COMPLETED":
            err = getattr(job_return, "_return_value", None)
            rec["job_status"] = "failed"
            rec["error"] = f"{type(err).__name__}: {err}" if isinstance(err, BaseException) else str(err)
    return rec


def expected_members(config: DictConfig) -> list[list[str]] | None:
    """Override lists the basic sweeper will launch (None for other sweepers)."""
    try:
        sweeper = str(OmegaConf.select(config, "hydra.sweeper._target_", default=""))
        if not sweeper.endswith("BasicSweeper"):
            return None
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser
        task = list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])
        params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
        extra = [f"{k}={v}" for k, v in params.items()]
        parsed = OverridesParser.create().parse_overrides(extra + task)
        batches = BasicSweeper.split_arguments(parsed, None)
        return [list(o) for batch in batches for o in batch]
    except Exception:  # noqa: BLE001
        return None


def _trusted_from_cfg(cfg) -> dict | None:
    try:
        from slim.signing.keys import load_trusted_keys
        trusted = list(OmegaConf.select(cfg, "signing.trusted", default=[]) or [])
        return load_trusted_keys(trusted or None, OmegaConf.select(cfg, "signing.key_dir", default=None))
    except Exception:  # noqa: BLE001
        return None


class SweepSummary(Callback):
    """Hydra callback: record every member of a multirun and summarise the sweep.

    Enable in conf/config.yaml::

        hydra:
          callbacks:
            sweep_summary:
              _target_: slim.sweep.SweepSummary
    """

    def __init__(self, every_job: bool = True) -> None:
        self.every_job = every_job
        self._t0: float | None = None

    # -- main process
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        exp = expected_members(config)
        if exp is not None:
            write_json(sweep_dir / EXPECTED_FILE, {"members": [{"overrides": o} for o in exp]})
        # Parallel members would race to create the default signing key on first use
        # (each would write its own and sign with it): create it once, here, first.
        try:
            if OmegaConf.select(config, "signing.enabled", default=False) and \
                    not OmegaConf.select(config, "signing.key", default=None):
                from slim.signing.keys import ensure_signing_key
                _, kid, path, created = ensure_signing_key(
                    None, OmegaConf.select(config, "signing.key_dir", default=None))
                if created:
                    print(f"slim: created signing key {kid} at {path}", file=sys.stderr)
        except Exception as e:  # noqa: BLE001
            print(f"slim: sweep: could not prepare the signing key ({e})", file=sys.stderr)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        summ = self._summarise(sweep_dir, config, final=True)
        if summ is not None:
            n_ok = sum(1 for r in summ["members"] if r["job_status"] == "completed")
            print(f"sweep summary: {sweep_dir}/summary.md ({n_ok}/{len(summ['members'])} members "
                  f"built; frontier.png)", file=sys.stderr)

    # -- job process (may be another process or machine)
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._t0 = time.time()

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if "MULTIRUN" not in str(OmegaConf.select(config, "hydra.mode", default="")):
            return  # a single run has no sweep to summarise
        seconds = time.time() - self._t0 if self._t0 else None
        try:
            rec = member_record(config, job_return, seconds)
        except Exception as e:  # noqa: BLE001
            rec = {"name": f"job {OmegaConf.select(config, 'hydra.job.num', default='?')}",
                   "build_dir": None, "job_status": "failed", "error": f"cannot name the build: {e}",
                   "num": OmegaConf.select(config, "hydra.job.num", default=None),
                   "overrides": list(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])}
        out = Path(str(config.hydra.runtime.output_dir))
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / MEMBER_FILE, rec)
        if self.every_job:
            self._summarise(Path(str(config.hydra.sweep.dir)), config, final=False)

    def _summarise(self, sweep_dir: Path, config, final: bool) -> dict | None:
        from filelock import FileLock
        try:
            with FileLock(str(sweep_dir / ".summary.lock")):
                return summarise_sweep(sweep_dir, trusted_keys=_trusted_from_cfg(config), final=final)
        except Exception as e:  # noqa: BLE001  (a summary failure must not fail the sweep)
            print(f"slim: sweep summary failed: {type(e).__name__}: {e}", file=sys.stderr)
            return None
