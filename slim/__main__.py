"""``python -m slim key=value ...``: compose a target with Hydra and build it."""
from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

import slim  # noqa: F401  (offline defaults before any HF import)
import slim.config  # noqa: F401  (registers the schema)
from slim.errors import SlimError
from slim.paths import CONF


@hydra.main(config_path=str(CONF), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from slim.auto import run_auto
    from slim.build import run_build
    multirun = HydraConfig.get().mode.name == "MULTIRUN"
    try:
        (run_auto if cfg.method.family == "auto" else run_build)(cfg)
    except SlimError as e:
        print(f"slim: error: {e}", file=sys.stderr)
        if multirun:
            raise
        sys.exit(e.exit_code)  # 2 user error, 3 environment (slim/errors.py)
    except OSError as e:  # a full disk outside any step (staging lease, ...): not a bug
        from slim.diskspace import describe, disk_full_info
        info = disk_full_info(e, guess=False)
        if not info:
            raise
        print(f"slim: error: {describe(info)}", file=sys.stderr)
        if multirun:
            raise
        sys.exit(3)
    except KeyboardInterrupt:
        print("slim: interrupted; cached steps are kept, rerun to resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
