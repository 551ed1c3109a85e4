"""How many of llama.cpp's converter architectures slim can convert: modules that import.

auto-round's bundled converter with PyPI's gguf 0.19.0 imported 145 of 251 architectures
(25 of 76 modules failed on gguf-py constants it lacked: Qwen2/3, Gemma, DeepSeek, GLM...).
slim uses the converter and gguf-py of the installed llama-cpp-python's own llama.cpp
(slim.toolchain), so every module should import. Exit status 1 when any does not.
Usage: python bench/converter_archs.py
"""
from __future__ import annotations

import sys


def main() -> int:
    from slim import toolchain
    from slim.steps.convert_gguf import architecture_report

    problems = toolchain.check()
    for p in problems:
        print(f"toolchain: {p}")
    rep = architecture_report()
    for mod, err in sorted(rep["failed_modules"].items()):
        print(f"  conversion/{mod}.py: {err}")
    print(f"toolchain: {rep['toolchain']}")
    print(f"{rep['importable']} of {rep['total']} architectures convertible "
          f"({rep['modules'] - len(rep['failed_modules'])} of {rep['modules']} converter "
          f"modules import)")
    return 0 if rep["importable"] == rep["total"] and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
