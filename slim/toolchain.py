"""One llama.cpp toolchain: converter, gguf-py and quantizer from the same llama.cpp revision.

llama-cpp-python compiles its own vendored llama.cpp (the quantizer and runtime
we call), but llama.cpp's converter (``convert_hf_to_gguf.py`` + its
``conversion/`` package) and the matching ``gguf`` Python package are not on
PyPI at that revision: PyPI's ``gguf`` lags the converter, and the copy bundled
in auto-round imports constants PyPI's ``gguf`` lacks (25 of its 76 modules
failed to import, Qwen2/3 and Gemma among them). So ``make setup`` runs
``python -m slim.toolchain install``: it downloads the sdist of the installed
llama-cpp-python (a package registry is the only network we have), installs its
``vendor/llama.cpp/gguf-py`` over PyPI's ``gguf`` and keeps its converter under
``<venv>/share/slim/llama.cpp/``, with a manifest of versions and digests.
:func:`check` says when the three drift apart, and :func:`toolchain_id` goes
into the cache keys of every step whose output the converter or gguf-py shapes.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from slim.errors import SlimError

MANIFEST = "toolchain.json"
SETUP_HINT = "run `make setup` (it installs llama.cpp's converter and gguf-py from the " \
             "pinned llama-cpp-python sdist)"


def home() -> Path:
    """Where the converter lives: ``$SLIM_LLAMACPP_DIR`` or ``<venv>/share/slim/llama.cpp``."""
    env = os.environ.get("SLIM_LLAMACPP_DIR")
    return Path(env) if env else Path(sys.prefix) / "share" / "slim" / "llama.cpp"


def _tree_digest(root: Path, pattern: str = "*.py") -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob(pattern)):
        if "__pycache__" in p.parts:
            continue
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()


def installed_gguf_digest() -> str:
    import gguf
    return _tree_digest(Path(gguf.__file__).parent)


def manifest() -> dict:
    path = home() / MANIFEST
    if not path.is_file():
        raise SlimError(f"llama.cpp converter not installed ({path} is missing): {SETUP_HINT}",
                        "toolchain_missing")
    return json.loads(path.read_text())


def check() -> list[str]:
    """Every way the converter, gguf-py and the compiled llama.cpp disagree (empty: one revision)."""
    try:
        m = manifest()
    except SlimError as e:
        return [str(e)]
    problems = []
    have = metadata.version("llama_cpp_python")
    if m["llama_cpp_python"] != have:
        problems.append(f"converter is from llama-cpp-python {m['llama_cpp_python']}, the "
                        f"installed quantizer/runtime is {have}")
    if installed_gguf_digest() != m["gguf_py_digest"]:
        problems.append(f"the installed gguf package ({metadata.version('gguf')}, "
                        f"{Path(__import__('gguf').__file__).parent}) is not the gguf-py of "
                        f"llama-cpp-python {m['llama_cpp_python']}'s llama.cpp")
    if _tree_digest(home() / "conversion") != m["converter_digest"]:
        problems.append(f"{home() / 'conversion'} was modified after installation")
    return problems


@lru_cache(maxsize=1)
def toolchain_id() -> str:
    """Stable id of the converter + gguf-py pair for cache keys ('absent' when not installed)."""
    try:
        m = manifest()
    except SlimError:
        return "absent"
    return (f"llama-cpp-python=={m['llama_cpp_python']};convert={m['converter_digest'][:16]};"
            f"gguf-py={m['gguf_py_digest'][:16]}")


def require() -> dict:
    """The manifest, or one SlimError listing every drift (before any conversion work)."""
    problems = check()
    if problems:
        raise SlimError("llama.cpp toolchain is inconsistent:\n  " + "\n  ".join(problems)
                        + f"\n  fix: {SETUP_HINT}", "toolchain_mismatch")
    return manifest()


def converter():
    """llama.cpp's ``conversion`` package at the pinned revision (imported from :func:`home`)."""
    require()
    root = str(home())
    if root not in sys.path:
        sys.path.insert(0, root)
    import conversion  # noqa: PLC0415 - lives outside site-packages by design
    if not str(Path(conversion.__file__)).startswith(root):
        raise SlimError(f"another package named 'conversion' shadows llama.cpp's converter: "
                        f"{conversion.__file__}", "toolchain_mismatch")
    return conversion


# --- installation (make setup) -------------------------------------------------------------

def install(dest: Path | None = None) -> dict:
    import shutil
    import subprocess
    import tarfile
    import tempfile

    dest = dest or home()
    version = metadata.version("llama_cpp_python")
    with tempfile.TemporaryDirectory(prefix="slim-llamacpp-") as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", f"llama_cpp_python=={version}", "-d", str(tmp)],
                       check=True)
        sdist = next(tmp.glob("llama_cpp_python-*.tar.gz"))
        want = ("vendor/llama.cpp/gguf-py/", "vendor/llama.cpp/conversion/",
                "vendor/llama.cpp/convert_hf_to_gguf.py", "vendor/llama.cpp/LICENSE")
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers()
                       if any(m.name.split("/", 1)[-1].startswith(w) for w in want)]
            tar.extractall(tmp / "src", members=members, filter="data")
        src = next((tmp / "src").iterdir()) / "vendor" / "llama.cpp"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--force-reinstall", str(src / "gguf-py")], check=True)
        staging = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        shutil.copytree(src / "conversion", staging / "conversion")
        shutil.copy2(src / "convert_hf_to_gguf.py", staging / "convert_hf_to_gguf.py")
        shutil.copy2(src / "LICENSE", staging / "LICENSE")
    import importlib
    for name in [n for n in sys.modules if n == "gguf" or n.startswith("gguf.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    m = {"llama_cpp_python": version, "source": f"{sdist.name} (PyPI sdist)",
         "converter_digest": _tree_digest(staging / "conversion"),
         "gguf_py_digest": installed_gguf_digest()}
    (staging / MANIFEST).write_text(json.dumps(m, indent=2) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    toolchain_id.cache_clear()
    return m


def architecture_report() -> dict:
    """How many of the converter's text architectures have a module that imports."""
    import importlib

    conv = converter()
    failed = {}
    for mod in sorted(set(conv.TEXT_MODEL_MAP.values())):
        try:
            importlib.import_module(f"conversion.{mod}")
        except Exception as e:
            failed[mod] = f"{type(e).__name__}: {e}"
    total = len(conv.TEXT_MODEL_MAP)
    ok = sum(1 for m in conv.TEXT_MODEL_MAP.values() if m not in failed)
    return {"total": total, "importable": ok, "modules": len(set(conv.TEXT_MODEL_MAP.values())),
            "failed_modules": failed, "toolchain": toolchain_id()}


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m slim.toolchain",
                                 description="llama.cpp converter + gguf-py at the revision of "
                                             "the installed llama-cpp-python")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install", help="download the sdist, install gguf-py, keep the converter")
    sub.add_parser("check", help="exit 1 when converter, gguf-py and llama.cpp drift apart")
    sub.add_parser("archs", help="count the converter's architectures whose modules import")
    a = ap.parse_args(argv)
    if a.cmd == "install":
        if not check():
            print(f"llama.cpp toolchain up to date: {toolchain_id()}")
            return 0
        m = install()
        print(f"installed llama.cpp converter + gguf-py from {m['source']} into {home()}")
        return 0
    if a.cmd == "check":
        problems = check()
        for p in problems:
            print(p, file=sys.stderr)
        if not problems:
            print(f"ok: {toolchain_id()}")
        return 1 if problems else 0
    rep = architecture_report()
    for mod, err in sorted(rep["failed_modules"].items()):
        print(f"  {mod}: {err}")
    print(f"{rep['importable']} of {rep['total']} architectures importable "
          f"({len(rep['failed_modules'])} of {rep['modules']} converter modules failed)")
    return 0 if rep["importable"] == rep["total"] else 1


if __name__ == "__main__":
    sys.exit(main())
