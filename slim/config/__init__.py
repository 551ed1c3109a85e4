"""Structured configs registered with Hydra's ConfigStore."""
from hydra.core.config_store import ConfigStore

from slim.config.schema import SlimConfig

_cs = ConfigStore.instance()
_cs.store(name="slim_schema", node=SlimConfig)
