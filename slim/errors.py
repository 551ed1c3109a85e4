"""User-facing errors. Anything raised as SlimError is printed without a traceback.

Exit codes of ``python -m slim``: 0 built, 1 a bug (an uncaught exception, traceback
printed), 2 a user's error (bad config, bad input), 3 the environment (a full disk),
130 interrupted (Ctrl-C).
"""
from __future__ import annotations


class SlimError(Exception):
    """A user's mistake or an environment problem, with a message saying what to do."""

    #: short machine-readable reason used in events.jsonl
    reason = "error"
    #: exit status of ``python -m slim`` when this ends the build
    exit_code = 2

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        if reason:
            self.reason = reason


class ConfigErrors(SlimError):
    """Every configuration problem found in one validation pass."""

    reason = "invalid_config"

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        lines = [f"{len(errors)} configuration error(s):"]
        lines += [f"  {key}: {why}" for key, why in errors]
        super().__init__("\n".join(lines))


class StepFailed(SlimError):
    """A step failed for a known reason (bad input file, unsupported shape...)."""

    def __init__(self, step: str, reason: str, message: str):
        self.step = step
        super().__init__(f"step {step} failed ({reason}): {message}", reason)


class DiskFull(StepFailed):
    """No space left on a device while a step (or the build around it) was writing: the
    environment's problem, not a bug; nothing partial is kept, a rerun resumes."""

    reason = "disk_full"
    exit_code = 3

    def __init__(self, step: str, message: str, info: dict | None = None):
        self.info = info or {}
        super().__init__(step, "disk_full", message)
