"""Format following: a short writing task with one (level 1), two (level 2) or three
(level 3) constraints, each checked by its own checker; several are combined with
``all_of``, so the item passes only when every constraint holds.

Tuned on the default parent: it never wrote in all caps or all lowercase when asked
(0/9) and rarely kept a sentence under 15 words, so case constraints stay in the
hand-written items only and the word limits are 25-30.
"""
from __future__ import annotations

import random

from . import levels

PER_LEVEL = 50

TOPICS = [
    "the ocean", "a cat", "winter", "coffee", "the moon", "a library", "rain", "a garden",
    "football", "a train journey", "bread", "the mountains", "a birthday party", "autumn leaves",
    "a rainy afternoon", "the city at night", "a dog", "summer holidays", "a river", "music",
    "breakfast", "a forest", "the desert", "a snowstorm", "a bicycle", "the beach", "a market",
    "friendship", "the stars", "a thunderstorm",
]
START_WORDS = ["The", "A", "Today", "Every", "In", "My", "Once", "Yes"]
KEYWORDS = ["beautiful", "peaceful", "quiet", "happy", "bright", "small", "warm", "green"]


def _start(rng):
    w = rng.choice(START_WORDS)
    return (f'Start your reply with the word "{w}".', {"type": "starts_with", "word": w})


def _include(rng):
    w = rng.choice(KEYWORDS)
    return (f'Use the word "{w}".', {"type": "contains_any", "answers": [w]})


def _max_words(rng):
    n = rng.choice([25, 30])
    return (f"Use at most {n} words.", {"type": "max_words", "n": n})


CONSTRAINTS = {"start": _start, "include": _include, "max_words": _max_words}


def _one_word(rng, topic):
    q = rng.choice([f"In one word, how would you describe {topic}?",
                    f"Answer with a single word: is {topic} usually pleasant? Yes or no.",
                    f"Reply with exactly one word: what colour do you associate with {topic}?"])
    return q, {"type": "one_word"}


def _json(rng, topic):
    keys = rng.choice([["topic", "mood"], ["title", "summary"], ["subject", "adjective"]])
    q = (f"Describe {topic} as a JSON object with the keys \"{keys[0]}\" and \"{keys[1]}\". "
         "Reply with the JSON only.")
    return q, {"type": "json_keys", "keys": keys}


def _one(rng: random.Random, level: int) -> tuple[str, dict]:
    topic = rng.choice(TOPICS)
    if level == 1:
        kind = rng.choice(["start", "include", "max_words", "list", "one_word", "json"])
        if kind == "one_word":
            return _one_word(rng, topic)
        if kind == "json":
            return _json(rng, topic)
        if kind == "list":
            n = rng.randint(2, 5)
            return (f"List exactly {n} things related to {topic}, as a bulleted list with one item per line.",
                    {"type": "n_items", "n": n})
        text, check = CONSTRAINTS[kind](rng)
        return f"Write one sentence about {topic}. {text}", check
    names = rng.sample(sorted(CONSTRAINTS), level)
    parts = [CONSTRAINTS[k](rng) for k in names]
    text = " ".join(p[0] for p in parts)
    return f"Write one sentence about {topic}. {text}", {"type": "all_of", "checks": [p[1] for p in parts]}


def items(per_level: int = PER_LEVEL) -> list[dict]:
    return levels("format", "behavioral/format", _one, per_level, 1401)
