"""method=auto's choice rule and its explanation in report.md (pure functions, no builds)."""
from slim.auto import choose
from slim.report.render import render_auto


def row(method, mb, status="accepted", retention=0.95, kld=0.01):
    return {"method": method, "bytes": int(mb * 1e6), "status": status, "retention": retention,
            "kld_mean": kld, "fits": True, "failed_gates": [] if status == "accepted" else ["g"]}


def test_smallest_accepted_wins():
    rows = [row("q8_0", 145), row("q5_k_m", 112), row("q4_k_m", 105, "rejected"), row("q3_k_m", 93)]
    assert choose(rows, 0.10)["method"] == "q3_k_m"


def test_within_tolerance_higher_retention_wins_then_lower_kld():
    rows = [row("a", 100, retention=0.90), row("b", 105, retention=0.97), row("c", 140, retention=1.0)]
    assert choose(rows, 0.10)["method"] == "b"          # c is outside 10% of the smallest
    rows = [row("a", 100, kld=0.05), row("b", 104, kld=0.01)]
    assert choose(rows, 0.10)["method"] == "b"          # same retention: lower KLD


def test_nothing_accepted_is_no_winner():
    assert choose([row("q2_k", 88, "rejected")], 0.1) is None


def test_report_lists_every_candidate_and_why():
    cands = [dict(row("q4_k_m", 105, "rejected"), failed_gates=["retention_floor x: 0.69 < 0.8"],
                  reason="built and probed"),
             dict(row("q3_k_m", 93), reason="built and probed"),
             dict(row("q8_0", 145), reason="does not fit", fits=False)]
    md = "\n".join(render_auto({"auto": {"winner": "q3_k_m", "why": "smallest passing",
                                         "rule": "r", "size_tolerance": 0.1, "headroom": 0.1,
                                         "candidates": cands}}))
    assert "Winner: **q3_k_m**" in md and "| q3_k_m ✔ |" in md
    assert "retention_floor x: 0.69 < 0.8" in md and "does not fit" in md
    assert render_auto({}) == []
