"""Factual recall from fixed tables, levelled by how often the default parent got each
table right (bench/probe_difficulty.py): capitals, opposites and chemical symbols
(level 1, ~95%); irregular plurals and continents (level 2, ~65%); leg counts, animal
sounds and the day after a weekday (level 3, ~25%).  "The month after X" and "a baby X
is called" were dropped: 0/7.  Checked by ``contains_any``; no answer occurs in its
question.
"""
from __future__ import annotations

import random

from . import interleave, item

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
OPPOSITES = [("big", "small", "little", "tiny"), ("hot", "cold"), ("up", "down"), ("day", "night"),
             ("fast", "slow"), ("happy", "sad", "unhappy"), ("open", "closed", "shut"),
             ("light", "dark", "heavy"), ("wet", "dry"), ("old", "young", "new"), ("in", "out"),
             ("left", "right"), ("black", "white"), ("tall", "short"), ("hard", "soft", "easy"),
             ("full", "empty"), ("rich", "poor"), ("early", "late"), ("loud", "quiet", "soft"),
             ("push", "pull"), ("win", "lose"), ("true", "false"), ("first", "last"),
             ("top", "bottom"), ("inside", "outside"), ("above", "below", "beneath"),
             ("thick", "thin"), ("strong", "weak"), ("clean", "dirty"), ("love", "hate")]
SOUNDS = [("moo", "cow", "cattle"), ("woof", "dog", "puppy"), ("meow", "cat", "kitten"),
          ("baa", "sheep", "lamb"), ("oink", "pig"), ("quack", "duck"), ("neigh", "horse"),
          ("hiss", "snake"), ("roar", "lion", "tiger"), ("hoot", "owl"), ("cluck", "chicken", "hen"),
          ("buzz", "bee")]
CAPITALS_2 = [("Sweden", "Stockholm"), ("Norway", "Oslo"), ("Greece", "Athens"), ("Portugal", "Lisbon"),
              ("Poland", "Warsaw"), ("Ireland", "Dublin"), ("Austria", "Vienna"),
              ("the Netherlands", "Amsterdam"), ("Belgium", "Brussels"), ("Mexico", "Mexico City"),
              ("Argentina", "Buenos Aires"), ("India", "New Delhi", "Delhi"), ("Australia", "Canberra"),
              ("Kenya", "Nairobi"), ("Turkey", "Ankara"), ("Thailand", "Bangkok"), ("South Korea", "Seoul"),
              ("Peru", "Lima"), ("Cuba", "Havana"), ("Denmark", "Copenhagen"), ("Finland", "Helsinki"),
              ("Hungary", "Budapest"), ("the Czech Republic", "Prague"), ("Iran", "Tehran"),
              ("Vietnam", "Hanoi"), ("Indonesia", "Jakarta"), ("the Philippines", "Manila"),
              ("Chile", "Santiago"), ("Colombia", "Bogota", "Bogotá"), ("Switzerland", "Bern", "Berne")]
CAPITALS_3 = [("Venezuela", "Caracas"), ("Nigeria", "Abuja"), ("Ethiopia", "Addis Ababa"), ("Morocco", "Rabat"),
              ("Saudi Arabia", "Riyadh"), ("Pakistan", "Islamabad"), ("Ukraine", "Kyiv", "Kiev"),
              ("Romania", "Bucharest"), ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"), ("Croatia", "Zagreb"),
              ("Iceland", "Reykjavik", "Reykjavík"), ("New Zealand", "Wellington"),
              ("Malaysia", "Kuala Lumpur"), ("Lebanon", "Beirut"), ("Syria", "Damascus"),
              ("Afghanistan", "Kabul"), ("Nepal", "Kathmandu"), ("Bangladesh", "Dhaka"), ("Ghana", "Accra"),
              ("Senegal", "Dakar"), ("Uganda", "Kampala"), ("Zimbabwe", "Harare"), ("Jamaica", "Kingston"),
              ("Uruguay", "Montevideo"), ("Ecuador", "Quito"), ("Mongolia", "Ulaanbaatar", "Ulan Bator")]
PLURALS = [("child", "children"), ("mouse", "mice"), ("foot", "feet"), ("tooth", "teeth"), ("man", "men"),
           ("woman", "women"), ("goose", "geese"), ("person", "people"), ("ox", "oxen"),
           ("cactus", "cacti", "cactuses"), ("leaf", "leaves"), ("knife", "knives"), ("wolf", "wolves"),
           ("city", "cities"), ("baby", "babies"), ("potato", "potatoes"), ("half", "halves")]
LEGS = [("a spider", "8", "eight"), ("an ant", "6", "six"), ("a bird", "2", "two"), ("a horse", "4", "four"),
        ("a beetle", "6", "six"), ("a chicken", "2", "two"), ("a cat", "4", "four"), ("a bee", "6", "six")]
SYMBOLS = [("gold", "Au"), ("silver", "Ag"), ("iron", "Fe"), ("sodium", "Na"), ("copper", "Cu"),
           ("lead", "Pb"), ("mercury", "Hg"), ("zinc", "Zn"), ("magnesium", "Mg"), ("chlorine", "Cl"),
           ("calcium", "Ca")]
CONTINENTS = [("Kenya", "Africa"), ("Brazil", "South America"), ("Japan", "Asia"), ("Canada", "North America"),
              ("Norway", "Europe"), ("Egypt", "Africa"), ("Argentina", "South America"), ("India", "Asia"),
              ("Italy", "Europe"), ("Mexico", "North America"), ("Nigeria", "Africa"), ("Peru", "South America"),
              ("Thailand", "Asia"), ("Poland", "Europe"), ("Ghana", "Africa")]


def _q(q: str, answers) -> tuple[str, list[str]]:
    return q + " Answer briefly.", list(answers)


def level1() -> list[tuple[str, str, list[str]]]:
    rows = [(f"capital-{c.split()[-1].lower()}", *_q(f"What is the capital of {c}?", ans))
            for c, *ans in CAPITALS_2 + CAPITALS_3]
    rows += [(f"opposite-{w}", *_q(f'What is the opposite of "{w}"?', ans)) for w, *ans in OPPOSITES]
    rows += [(f"symbol-{e}", *_q(f"What is the chemical symbol for {e}?", [s])) for e, s in SYMBOLS]
    return rows


def level2() -> list[tuple[str, str, list[str]]]:
    rows = [(f"plural-{w}", *_q(f'What is the plural of "{w}"?', ans)) for w, *ans in PLURALS]
    rows += [(f"continent-{c.lower()}", *_q(f"On which continent is {c}?", [a])) for c, a in CONTINENTS]
    return rows


def level3() -> list[tuple[str, str, list[str]]]:
    rows = [(f"legs-{a.split()[-1]}", *_q(f"How many legs does {a} have?", ans)) for a, *ans in LEGS]
    rows += [(f"sound-{sound}", *_q(f'Which animal says "{sound}"?', ans)) for sound, *ans in SOUNDS]
    rows += [(f"day-after-{d.lower()}", *_q(f"Which day of the week comes after {d}?", [DAYS[(i + 1) % 7]]))
             for i, d in enumerate(DAYS)]
    return rows


def items() -> list[dict]:
    rng = random.Random(1601)
    levels = []
    for level, rows in ((1, level1()), (2, level2()), (3, level3())):
        rows = sorted(rows)
        rng.shuffle(rows)
        levels.append([item(f"factual-l{level}-{key}", "behavioral/factual", q,
                            {"type": "contains_any", "answers": ans}, level) for key, q, ans in rows])
    return interleave(levels)
