"""Arithmetic (1- to 3-digit operands) and unit conversion, checked by the ``number`` checker.

Levels were tuned on the default parent (bench/probe_difficulty.py): random three-digit
sums and two-digit products were near 0%; unit conversions by 16, 24 or 60 5% even with
the factor stated, by 2-12 with the factor given 13-17%, reverse conversions (cm -> m)
0%; none of these is generated.  Unit conversion stays the weakest family on this parent.

The answer is never one of the numbers in the prompt (nor a conversion factor), so
echoing the question or quoting "1 m = 100 cm" does not pass.
"""
from __future__ import annotations

import random

from . import levels

PER_LEVEL = 50


def _arith_one(rng: random.Random, level: int) -> tuple[str, int]:
    """Level 1: one-digit operands; 2: a two-digit and a one-digit operand, or round tens;
    3: two two-digit operands, or round hundreds (three digits)."""
    op = rng.choice(["+", "-", "*"] if level < 3 else ["+", "-"])
    if level == 1:
        a, b = rng.randint(2, 9), rng.randint(2, 9)
    elif level == 2:
        a, b = (rng.randint(11, 99), rng.randint(2, 9)) if rng.random() < 0.6 else \
            (10 * rng.randint(1, 9), 10 * rng.randint(1, 9) if op != "*" else rng.randint(2, 9))
    else:
        a, b = (rng.randint(11, 99), rng.randint(11, 99)) if rng.random() < 0.6 else \
            (100 * rng.randint(1, 9), 100 * rng.randint(1, 9))
    if op == "*":
        word = rng.choice(["×", "*", "times"])
        return f"What is {a} {word} {b}?", a * b
    if op == "-":
        a, b = max(a, b), min(a, b)
        word = rng.choice(["-", "minus"])
        return f"What is {a} {word} {b}?", a - b
    if rng.random() < 0.5:
        a, b = b, a
    word = rng.choice(["+", "plus"])
    return f"What is {a} {word} {b}?", a + b


def _arith_item(rng: random.Random, level: int):
    q, v = _arith_one(rng, level)
    nums = {int(t) for t in q.replace("?", " ").split() if t.isdigit()}
    if v in nums or v <= 1:
        return None
    return q + " Reply with the number only.", {"type": "number", "value": v}


def arithmetic(per_level: int = PER_LEVEL) -> list[dict]:
    return levels("arith", "behavioral/arithmetic", _arith_item, per_level, 1101)


# (big unit, small unit, factor): "how many <small> are in N <big>"
_UNITS = [
    ("centimeter", "millimeters", 10), ("decade", "years", 10), ("dime", "cents", 10),
    ("meter", "centimeters", 100), ("kilometer", "meters", 1000), ("kilogram", "grams", 1000),
    ("liter", "milliliters", 1000), ("meter", "millimeters", 1000), ("century", "years", 100),
]
_PLURAL = {"century": "centuries", "foot": "feet"}


def _units_one(rng: random.Random, level: int) -> tuple[str, int, set[int]]:
    """Level 1: a factor of 10 the model must know, n up to 20; 2: the same with n of 21-99;
    3: a factor of 100 or 1000, which the parent often gets wrong by a zero."""
    big, small, f = rng.choice([u for u in _UNITS if (u[2] == 10) == (level < 3)])
    n = rng.randint(2, 20) if level == 1 else rng.randint(21, 99) if level == 2 else rng.randint(2, 12)
    q = f"How many {small} are in {n} {_PLURAL.get(big, big + 's')}?"
    return q, n * f, {1, n, f}


def _units_item(rng: random.Random, level: int):
    q, v, forbidden = _units_one(rng, level)
    if v in forbidden:
        return None
    return q + " Reply with the number only.", {"type": "number", "value": v}


def units(per_level: int = PER_LEVEL) -> list[dict]:
    return levels("units", "behavioral/units", _units_item, per_level, 1201)
