"""Every config of a group (methods, tiers) on the search path the run was composed from.

``--config-dir`` (or ``hydra.searchpath``) adds folders to ``conf/``; a method or tier YAML
placed there must be as visible to method=auto, capability hints and "what would fit" as one
shipped in ``conf/``. Inside a Hydra run the folders are the run's config sources (Hydra's
order: the first folder holding a name wins); outside one (a library call) ``conf/`` alone.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from slim.errors import SlimError
from slim.paths import CONF


def folders() -> list[Path]:
    """Config folders of the current run, in search order."""
    from hydra.core.hydra_config import HydraConfig
    if not HydraConfig.initialized():
        return [Path(CONF)]
    srcs = HydraConfig.get().runtime.config_sources
    out = [Path(s.path) for s in srcs if s.schema == "file" and s.path]
    return out or [Path(CONF)]


def names(group: str) -> list[str]:
    """Config names in ``group``, sorted."""
    return sorted({p.stem for d in folders() for p in (d / group).glob("*.yaml")})


def load(group: str, name: str) -> dict:
    """One config of ``group`` as a plain dict; the first folder holding it wins."""
    dirs = folders()
    for d in dirs:
        f = d / group / f"{name}.yaml"
        if f.is_file():
            return OmegaConf.to_container(OmegaConf.load(f), resolve=True)
    raise SlimError(f"no config {group}/{name}.yaml in {', '.join(map(str, dirs))}",
                    "invalid_config")


def configs(group: str) -> dict[str, dict]:
    """Every config of ``group`` by name."""
    return {n: load(group, n) for n in names(group)}
