"""Counting and number sequences, levelled by the default parent's pass rates
(bench/probe_difficulty.py).  Level 1: count aloud from 1 (or a small a) to b (``in_order``: the
numbers a..b in order, a numbered list counts); level 2: the next term of a sequence counting by 2, 5 or 10
from a multiple of the step; level 3: how many items of one kind are in a list of 2-3
(``first_number``: the first number in the reply, digits or words, so a numbered list
that happens to contain the count does not pass) or the number right after n.

Sequence and "after" items are checked by ``number``; their answer never occurs in the
prompt.  Counting mixed lists of 4-7 items scored 0-20% and "the number before n" 10%,
so neither is generated.
"""
from __future__ import annotations

import random

from . import levels

PER_LEVEL = (45, 50, 55)  # "count from a to b" has only ~45 distinct easy prompts

KINDS = {
    "fruits": ["apple", "pear", "plum", "banana", "cherry", "grape", "lemon", "mango", "peach", "kiwi"],
    "animals": ["dog", "cat", "horse", "rabbit", "tiger", "sheep", "goat", "mouse", "lion", "fox"],
    "colours": ["red", "blue", "green", "yellow", "purple", "pink", "brown", "grey", "black", "white"],
    "tools": ["hammer", "saw", "drill", "wrench", "spanner", "chisel", "pliers", "shovel", "rake", "axe"],
    "vehicles": ["car", "bus", "truck", "bicycle", "train", "tram", "boat", "scooter", "van", "taxi"],
}


def _one(rng: random.Random, level: int) -> tuple[str, dict]:
    if level == 1:
        a = rng.choice([1, rng.randint(2, 9)])  # the parent counts from 1 (or small a) only
        b = a + rng.randint(2, 14) if a == 1 else a + rng.randint(3, 6)
        return f"Count from {a} to {b}.", {"type": "in_order", "values": list(range(a, b + 1))}
    if level == 2:
        step = rng.choice([2, 5, 10])
        start = step * rng.randint(1, 20)
        seq = [start + step * i for i in range(4)]
        return (f"What number comes next in this sequence: {', '.join(map(str, seq))}, ...? "
                "Reply with the number only.", {"type": "number", "value": start + 4 * step})
    if rng.random() < 0.5:
        n = rng.randint(3, 40)
        return f"What number comes right after {n}? Reply with the number only.", {"type": "number", "value": n + 1}
    kind = rng.choice(sorted(KINDS))
    k = rng.randint(2, 3)
    words = rng.sample(KINDS[kind], k)
    return (f"How many {kind} are in this list: {', '.join(words)}? Reply with the number only.",
            {"type": "first_number", "value": k})


def items(per_level: tuple[int, int, int] = PER_LEVEL) -> list[dict]:
    return levels("count", "behavioral/counting", _one, per_level, 1301)
