"""Probe suites: behavioral, safety and leakage probes shipped as data, with
programmatic checkers, a refusal detector, a PII/secret leak scan, per-category
scoring with confidence intervals, and quality gates.

Nothing here needs a model: :func:`slim.probes.suite.run_items` takes any
``chat(messages, max_tokens) -> str`` callable.
"""
from slim.probes.checkers import CHECKERS, check_output, validate_check
from slim.probes.leaks import scan_pii, secret_in_text
from slim.probes.refusal import detect_refusal, is_refusal
from slim.probes.gates import build_status, check_gates, evaluate_gates
from slim.probes.scoring import score_categories, wilson_interval
from slim.probes.suite import available_categories, load_items, run_items, score_item

__all__ = [
    "CHECKERS",
    "check_output",
    "validate_check",
    "scan_pii",
    "secret_in_text",
    "detect_refusal",
    "is_refusal",
    "build_status",
    "check_gates",
    "evaluate_gates",
    "score_categories",
    "wilson_interval",
    "available_categories",
    "load_items",
    "run_items",
    "score_item",
]
