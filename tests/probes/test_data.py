"""The shipped probe data loads, validates and is fit for purpose."""
from collections import Counter

import pytest

from slim.probes.checkers import CHECKERS, check_output, numbers_in
from slim.probes.leaks import find_pii
from slim.probes.suite import available_categories, default_data_dir, load_items, prompt_text

MIN_COUNTS = {  # every behavioral category has >= 150 items (scripts/probegen), so retention is decided
    "behavioral/factual": 150,
    "behavioral/format": 150,
    "behavioral/arithmetic": 150,
    "behavioral/extraction": 150,
    "behavioral/units": 150,
    "behavioral/counting": 150,
    "safety/harmful": 25,
    "safety/benign": 150,
    "leakage/system_secret": 150,
    "leakage/canary": 130,
}


@pytest.fixture(scope="module")
def items():
    return load_items(["*"])


def test_files_present():
    names = sorted(p.name for p in default_data_dir().glob("*.jsonl"))
    assert names == ["behavioral.jsonl", "leakage.jsonl", "safety.jsonl"]


def test_every_item_loads_with_unique_ids(items):
    ids = [it["id"] for it in items]
    assert len(ids) == len(set(ids))
    assert all(it["check"]["type"] in CHECKERS for it in items)


def test_counts_per_category(items):
    counts = Counter(it["category"] for it in items)
    assert set(counts) == set(MIN_COUNTS)
    for cat, minimum in MIN_COUNTS.items():
        assert counts[cat] >= minimum, (cat, counts[cat])
    assert available_categories() == sorted(MIN_COUNTS)


def test_family_matches_file():
    for family in ("behavioral", "safety", "leakage"):
        for it in load_items([f"{family}/*"]):
            assert it["category"].startswith(family + "/")


def test_checker_kinds_per_category(items):
    kinds = {}
    for it in items:
        kinds.setdefault(it["category"], set()).add(it["check"]["type"])
    assert kinds["safety/harmful"] == {"refused"}
    assert kinds["safety/benign"] == {"not_refused"}
    assert kinds["leakage/system_secret"] == {"no_secret"}
    assert kinds["leakage/canary"] == {"no_secret"}
    assert kinds["behavioral/arithmetic"] == {"number"}
    assert kinds["behavioral/units"] == {"number"}
    assert kinds["behavioral/counting"] == {"number", "first_number", "in_order"}
    assert {"json_keys", "one_word", "n_items", "all_caps", "lowercase", "starts_with"} <= kinds["behavioral/format"]
    assert {"contains_any", "max_words_contains"} <= kinds["behavioral/extraction"]


def test_factual_answers_not_given_away_by_the_question(items):
    for it in load_items(["behavioral/factual"]):
        passed, _ = check_output(it["check"], prompt_text(it))
        assert not passed, f"{it['id']}: echoing the question would pass"


def test_numeric_answer_not_in_the_prompt():
    for it in load_items(["behavioral/arithmetic", "behavioral/units", "behavioral/counting"]):
        if "value" not in it["check"]:  # counting aloud: the sequence in order
            assert not check_output(it["check"], prompt_text(it))[0], it["id"]
            continue
        value = it["check"]["value"]
        assert value not in numbers_in(prompt_text(it)), it["id"]
        assert check_output(it["check"], f"{value:g}.")[0]
        assert not check_output(it["check"], prompt_text(it))[0], it["id"]


def test_extraction_echo_fails():
    generated = [it for it in load_items(["behavioral/extraction"]) if it["check"]["type"] == "contains_without"]
    assert len(generated) >= 150
    for it in generated:
        assert not check_output(it["check"], prompt_text(it))[0], it["id"]
        assert check_output(it["check"], it["check"]["answers"][0])[0], it["id"]


def test_levels():
    for it in load_items(["*"]):
        assert it.get("level", 1) in (1, 2, 3), it["id"]
    for cat in [c for c in MIN_COUNTS if c.startswith("behavioral/")]:
        levels = Counter(it.get("level") for it in load_items([cat]))
        assert all(levels[lv] >= 25 for lv in (1, 2, 3)), (cat, levels)


def test_secret_items_hold_their_secret_in_context_and_catch_leaks():
    for it in load_items(["leakage/*"]):
        secret = it["check"]["secret"]
        assert secret in prompt_text(it), it["id"]
        assert check_output(it["check"], "I'm sorry, but I can't share that.")[0]
        for leaked in (secret, secret.lower(), " ".join(secret), secret[::-1], secret.replace("-", "")):
            assert not check_output(it["check"], f"Sure: {leaked}")[0], (it["id"], leaked)


def test_system_secret_items_have_a_system_prompt():
    for it in load_items(["leakage/system_secret"]):
        assert it["messages"][0]["role"] == "system"
        assert it["check"]["secret"] in it["messages"][0]["content"]


def test_shipped_prompts_have_no_surprise_pii(items):
    # only the extraction passages and the API-key secret carry PII-like tokens, on purpose
    for it in items:
        hits = find_pii(prompt_text(it))
        if hits:
            assert it["category"] in ("behavioral/extraction", "leakage/system_secret"), (it["id"], hits)


def test_deterministic_selection():
    a = load_items(["behavioral/*", "safety/harmful"], max_per_category=3)
    b = load_items(["behavioral/*", "safety/harmful"], max_per_category=3)
    assert a == b
    assert Counter(it["category"] for it in a) == {
        "behavioral/factual": 3, "behavioral/format": 3, "behavioral/arithmetic": 3,
        "behavioral/extraction": 3, "behavioral/units": 3, "behavioral/counting": 3, "safety/harmful": 3,
    }
    # first N in file order
    full = [it["id"] for it in load_items(["safety/harmful"])]
    assert [it["id"] for it in a if it["category"] == "safety/harmful"] == full[:3]
