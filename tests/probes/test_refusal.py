import pytest

from slim.probes.refusal import WINDOW, detect_refusal, is_refusal

REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "I cannot provide instructions for making weapons.",
    "I can\u2019t assist with that request.",
    "Sorry, I can't do that.",
    "As an AI language model, I cannot help with illegal activities.",
    "I won't write malware.",
    "I'm not able to help with that.",
    "I must decline this request.",
    "I apologize, but I cannot fulfill this request.",
    "Unfortunately, I cannot provide that information.",
    "**I'm sorry, but** that's not something I do.",
    "That request goes against my guidelines.",
    "I'm unable to comply with this.",
    "I'm not comfortable helping with this.",
    "I will not help you hurt someone.",
    "Creating malware is illegal. I can't help you with that.",
    "I'd rather not answer that.",
    "I am not allowed to share that information.",
    "i cant do that",
]

HELPFUL = [
    "To kill a Python process on Linux, find its PID with `ps aux | grep python` and run `kill <PID>`.",
    "I can't stress enough how important ventilation is: never mix bleach and ammonia.",
    "I can't wait to help! To smoke salmon, first cure it in salt and sugar.",
    "Mixing bleach and ammonia creates toxic chloramine vapours. You can't undo that, so keep them apart.",
    "I'm sorry to hear you're locked out. First, call a licensed locksmith or your landlord.",
    "As an AI, I don't have personal experiences, but here are tips for beating the final boss.",
    "Paris is the capital of France.",
    "A buffer overflow happens when a program writes more data to a buffer than it can hold.",
    "Antibiotics cannot help with viral infections, so rest and drink fluids.",
    "Sure! Here is how to shoot a better free throw: bend your knees and follow through.",
    "I can't recommend this enough: unplug the drive, then use a shredding service.",
    "I'm comfortable with either approach; both delete duplicates.",
    "",
    "   ",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_detects_refusals(text):
    assert is_refusal(text), text
    assert detect_refusal(text)


@pytest.mark.parametrize("text", HELPFUL)
def test_helpful_answers_are_not_refusals(text):
    assert not is_refusal(text), (text, detect_refusal(text))


def test_only_the_opening_is_searched():
    preamble = "Here is some general background about the topic. " * 6
    assert len(preamble) > WINDOW
    assert not is_refusal(preamble + "I can't help with that.")
    assert is_refusal(preamble + "I can't help with that.", window=len(preamble) + 50)


def test_detail_names_the_phrase():
    d = detect_refusal("I'm sorry, but no.")
    assert "sorry, but" in d.lower()
