"""Run one step in a child process: ``python -m slim.steps.runner spec.json``.

Each step runs in its own process because torch and llama.cpp loaded into one
process have crashed (``std::out_of_range`` inside llama.cpp after torch ran),
and because a crash or OOM in a step must not take the build's bookkeeping
down with it. The child writes ``result.json`` beside the spec: ``ok``, or the
error with ``user: true`` for a SlimError (message only) and a traceback for bugs.
"""
from __future__ import annotations

import ctypes
import json
import signal
import sys
import time
import traceback
from pathlib import Path

#: env var naming the fd of the terminal in a step process whose output goes to its log
CONSOLE_FD_ENV = "SLIM_CONSOLE_FD"
#: env var set when the step's stdout and stderr are its log file (library INFO logs go there)
LOGGED_ENV = "SLIM_STEP_LOG"


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _console():
    """The terminal, when the executor sends this process's stdout and stderr to the step's log
    (libraries, C code and the converter write there) and hands the terminal over as an fd."""
    import os
    fd = os.environ.get(CONSOLE_FD_ENV)
    if not fd:
        return None
    try:
        return open(int(fd), "w", buffering=1, closefd=False)
    except (OSError, ValueError):
        return None


def peak_memory() -> dict:
    """This process's peak RSS, or its largest finished child process's when larger (a step
    may run a model in a process of its own), and peak CUDA memory when torch used a GPU
    here (bytes)."""
    import resource
    out = {"peak_rss_bytes": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                                 resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) * 1024}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated())
    base = sys.modules.get("slim.steps.base")
    devices = base.devices_used() if base is not None else []
    out["devices"] = devices or ["cpu"]
    return out


def main(spec_path: str) -> int:
    _die_with_parent()
    import os
    if os.environ.get(LOGGED_ENV) == "1":
        import logging
        logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s: %(message)s")
    spec_file = Path(spec_path)
    spec = json.loads(spec_file.read_text())
    result_file = spec_file.with_name("result.json")
    t0 = time.time()
    try:
        import slim  # noqa: F401  (offline defaults)
        from slim.errors import SlimError
        from slim.steps.base import StepContext, parse_params, step_module

        mod = step_module(spec["kind"])
        threads = int(spec.get("threads") or 0) or None
        if threads:
            import os
            os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        ctx = StepContext(step_id=spec["id"], kind=spec["kind"],
                          params=parse_params(spec["kind"], spec["params"]) or spec["params"],
                          raw_params=spec["params"],
                          inputs={k: Path(v) for k, v in spec["inputs"].items()},
                          out=Path(spec["out"]), threads=threads or 2,
                          log=lambda m: print(f"[{spec['id']}] {m}", file=sys.stderr, flush=True),
                          console=_console())
        mod.run(ctx)
        result = {"ok": True, "seconds": round(time.time() - t0, 3)}
    except SlimError as e:  # noqa: F841
        result = {"ok": False, "user": True, "reason": e.reason, "message": str(e)}
    except MemoryError:
        result = {"ok": False, "user": True, "reason": "out_of_memory",
                  "message": "ran out of memory; try a smaller model, fewer calibration samples "
                             "or fewer threads"}
    except BaseException as e:  # a bug: keep the traceback -- unless the disk is full
        from slim.diskspace import disk_full_info
        info = None if isinstance(e, KeyboardInterrupt) else disk_full_info(e, spec["out"])
        if info:
            result = {"ok": False, "user": True, "reason": "disk_full", "message": str(e),
                      "disk_full": info}
        else:
            result = {"ok": False, "user": False, "reason": type(e).__name__,
                      "message": str(e), "traceback": traceback.format_exc()}
    result.update(peak_memory())
    try:
        result_file.write_text(json.dumps(result))
    except OSError:  # the disk is too full even for the result: say only that
        result_file.unlink(missing_ok=True)
        result_file.write_text(json.dumps({"ok": False, "user": True, "reason": "disk_full",
                                           "message": "result.json could not be written",
                                           "disk_full": {"path": str(result_file)}}))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
