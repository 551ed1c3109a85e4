"""User-facing errors. Anything raised as SlimError is printed without a traceback."""
from __future__ import annotations


class SlimError(Exception):
    """A user's mistake or an environment problem, with a message saying what to do."""

    #: short machine-readable reason used in events.jsonl
    reason = "error"

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
