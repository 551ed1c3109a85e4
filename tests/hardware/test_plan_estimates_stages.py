"""plan=true sizes methods that change the model's shape (student stages) from the stages."""
import pytest

from tests.conftest import compose

from slim.planview import candidate_rows


def test_distill_half_is_sized_as_the_half_depth_student():
    cfg = compose(["method=distill_half", "hardware=edge4gb"])
    (row,) = candidate_rows(cfg, ["distill_half"])
    assert "error" not in row, row
    # the F16 GGUF of the 15-layer student built on this host: 164,640,544 bytes
    assert row["bytes"] == pytest.approx(164_640_544, rel=0.03)
    (q4,) = candidate_rows(cfg, ["distill_half_q4_k_m"])
    assert q4["bytes"] < row["bytes"] / 2
    # the KV cache of the fit counts the student's 15 layers, not the parent's 30
    assert "15 layers" in q4["fit"]["formula"]


def test_lowrank_says_why_it_cannot_be_sized():
    cfg = compose(["method=lowrank_e95", "hardware=rtx3060_12gb"])
    (row,) = candidate_rows(cfg, ["lowrank_e95"])
    assert "singular values" in row["error"] and "lowrank_e95" in row["error"]
