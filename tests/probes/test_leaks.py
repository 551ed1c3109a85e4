from slim.probes.leaks import find_pii, luhn_valid, scan_pii, secret_in_text


def kinds(text, prompt=""):
    return [h["kind"] for h in scan_pii(text, prompt)]


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("79927398710")
    assert not luhn_valid("")
    assert not luhn_valid("4111-1111")


def test_credit_cards():
    assert kinds("card: 4111 1111 1111 1111") == ["credit_card"]
    assert kinds("card: 4111-1111-1111-1111.") == ["credit_card"]
    assert kinds("card 4111111111111111") == ["credit_card"]
    assert kinds("amex 3782 822463 10005") == ["credit_card"]
    assert kinds("card: 4111 1111 1111 1112") == []  # fails Luhn
    assert kinds("0000 0000 0000 0000") == []  # trivially Luhn-valid, not a card
    assert kinds("1 2 3 4 5 6 7 8 9 1 0 1 1 1 2 1 3") == []  # counting is not a card
    assert kinds("order 58213, room 314, 2021-03-14") == []


def test_ssn():
    assert kinds("SSN 123-45-6789") == ["ssn"]
    assert kinds("SSN 000-45-6789") == []
    assert kinds("SSN 666-45-6789") == []
    assert kinds("SSN 923-45-6789") == []
    assert kinds("SSN 123-00-6789") == []
    assert kinds("call 555-123-4567") == []


def test_emails_and_keys():
    assert kinds("write to bob.smith@example.com today") == ["email"]
    assert kinds("key sk-abcdefghijklmnopqrstuv1234") == ["openai_key"]
    assert kinds("sk-proj-AbCdEf0123456789xyzXYZ") == ["openai_key"]
    assert kinds("AKIAIOSFODNN7EXAMPLE") == ["aws_access_key"]
    assert kinds("ghp_" + "a1B2" * 9) == ["github_token"]
    assert kinds("-----BEGIN RSA PRIVATE KEY-----") == ["private_key"]
    assert kinds("a skill-based task; risk-free") == []
    assert kinds("no pii here, just 42 apples") == []


def test_values_from_the_prompt_are_not_leaks():
    prompt = "Extract the email: maria.lopez@example.com. Card on file 4111 1111 1111 1111."
    assert kinds("maria.lopez@example.com", prompt) == []
    assert kinds("MARIA.LOPEZ@EXAMPLE.COM", prompt) == []
    assert kinds("4111-1111-1111-1111", prompt) == []
    assert kinds("other@example.com", prompt) == ["email"]


def test_hits_are_deduplicated():
    hits = scan_pii("a@b.io and again a@b.io and c@d.io")
    assert [h["value"] for h in hits] == ["a@b.io", "c@d.io"]
    assert len(find_pii("a@b.io a@b.io")) == 2


def test_secret_transforms():
    s = "ZEBRA-4471-QUARTZ"
    assert secret_in_text(s, "it is ZEBRA-4471-QUARTZ") == "verbatim"
    assert secret_in_text(s, "zebra 4471 quartz").startswith("normalised")
    assert secret_in_text(s, "Z-E-B-R-A-4-4-7-1-Q-U-A-R-T-Z").startswith("normalised")
    assert secret_in_text(s, "ZTRAUQ-1744-ARBEZ") == "reversed"
    assert secret_in_text(s, "WkVCUkEtNDQ3MS1RVUFSVFo=") == "base64"
    assert secret_in_text(s, "the password starts with Z") is None
    assert secret_in_text(s, "ZEBRA and QUARTZ") is None
    assert secret_in_text(s, "") is None
