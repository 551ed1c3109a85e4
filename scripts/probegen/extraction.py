"""Extraction from generated records: one field of a 3-field record (level 1), one of two
numbers in a 5-field record (level 2), one person's field when two people are described
in prose (level 3).  Checked by ``contains_without``: the asked value must appear and
the other values of the record must not, so echoing the record does not pass.
"""
from __future__ import annotations

import random

from . import levels

PER_LEVEL = 50

FIRST = ["Maria", "Omar", "Helen", "Rahul", "Clara", "Tomas", "Aiko", "Samuel", "Nadia", "Peter",
         "Lucia", "Kwame", "Ingrid", "Diego", "Mei", "Jonas", "Fatima", "Oscar", "Elena", "Victor"]
LAST = ["Lopez", "Haddad", "Carter", "Mehta", "Jensen", "Novak", "Tanaka", "Okafor", "Petrov", "Grant",
        "Rossi", "Mensah", "Berg", "Alvarez", "Chen", "Weber", "Khan", "Larsen", "Costa", "Moreau"]
CITIES = ["Lisbon", "Oslo", "Madrid", "Dublin", "Vienna", "Prague", "Cairo", "Lima", "Seoul", "Nairobi",
          "Toronto", "Warsaw", "Athens", "Helsinki", "Manila", "Quito", "Lyon", "Porto", "Krakow", "Osaka"]
JOBS = ["teacher", "nurse", "pilot", "baker", "engineer", "lawyer", "plumber", "chef", "architect", "farmer"]


def _person(rng: random.Random, taken: set[str]) -> dict:
    while True:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        city = rng.choice(CITIES)
        if name not in taken and city not in taken and name.split()[0] not in taken:
            taken.update({name, city, name.split()[0]})
            return {"name": name, "city": city, "age": str(rng.randint(19, 79)), "job": rng.choice(JOBS)}


_ASK = {
    "name": "What is the person's name? Reply with the name only.",
    "city": "Which city does the person live in? Reply with the city only.",
    "age": "How old is the person? Reply with the number only.",
    "job": "What is the person's job? Reply with one word.",
    "order": "What is the order number? Reply with the number only.",
    "room": "Which room number is given? Reply with the number only.",
}


def _level1(rng):
    p = _person(rng, set())
    fields = rng.sample(["name", "city", "age", "job"], 3)
    ask = rng.choice(fields)
    record = "\n".join(f"{f.capitalize()}: {p[f]}" for f in fields)
    return f"Record:\n{record}\n\n{_ASK[ask]}", p[ask], [p[f] for f in fields if f != ask]


def _level2(rng):
    p = _person(rng, set())
    p["order"] = str(rng.randint(10000, 99999))
    p["room"] = str(rng.randint(100, 599))
    fields = ["name", "age", "city", "order", "room"]
    rng.shuffle(fields)
    ask = rng.choice(["age", "order", "room"])
    labels = {"order": "Order number", "room": "Room"}
    record = "\n".join(f"{labels.get(f, f.capitalize())}: {p[f]}" for f in fields)
    return f"Record:\n{record}\n\n{_ASK[ask]}", p[ask], [p[f] for f in fields if f != ask]


def _level3(rng):
    taken: set[str] = set()
    a, b = _person(rng, taken), _person(rng, taken)
    while b["age"] == a["age"] or b["job"] == a["job"]:
        b["age"], b["job"] = str(rng.randint(19, 79)), rng.choice(JOBS)
    text = (f"{a['name']} is a {a['job']} aged {a['age']} who lives in {a['city']}. "
            f"{b['name']} is a {b['job']} aged {b['age']} who lives in {b['city']}.")
    who = rng.choice([a, b])
    other = b if who is a else a
    ask = rng.choice(["city", "age", "job"])
    q = {"city": f"Which city does {who['name']} live in? Reply with the city only.",
         "age": f"How old is {who['name']}? Reply with the number only.",
         "job": f"What is {who['name']}'s job? Reply with one word."}[ask]
    return f"Text: {text}\n\n{q}", who[ask], [other[ask]]


def _item(rng: random.Random, level: int):
    q, answer, distractors = {1: _level1, 2: _level2, 3: _level3}[level](rng)
    if answer in distractors:
        return None
    return q, {"type": "contains_without", "answers": [answer], "distractors": distractors}


def items(per_level: int = PER_LEVEL) -> list[dict]:
    return levels("extract", "behavioral/extraction", _item, per_level, 1501)
