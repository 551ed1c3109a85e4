"""Build folder names: what a target's build is called under ``paths.builds``.

Shared by the build, method=auto, the report and the sweep, so it sits below all of them.
"""
from __future__ import annotations

from omegaconf import OmegaConf


def default_build_name(cfg, method: str | None = None) -> str:
    """``<model>-<method>-<hardware>``, plus the probe suite and calibration set when they are
    not the defaults: they change the report (and calibration the artifact), so a
    ``probes=full`` build must not overwrite the default-suite build of the same target."""
    name = f"{cfg.model.name}-{method or cfg.method.name}-{cfg.hardware.name}"
    probes = OmegaConf.select(cfg, "probes.name", default="default")
    calib = OmegaConf.select(cfg, "calibration.name", default="default")
    if probes not in (None, "default"):
        name += f"-probes_{probes}"
    if calib not in (None, "default"):
        name += f"-calib_{calib}"
    return name


def build_name(cfg) -> str:
    return cfg.build_name or default_build_name(cfg)
