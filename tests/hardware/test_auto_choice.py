"""method=auto's choice rule and its explanation in report.md (pure functions, no builds)."""
from slim.auto import choose
from slim.report.render import render_auto


def row(method, mb, status="accepted", kld=0.01, ppl=1.01, family="gguf", fits=True):
    return {"method": method, "family": family, "bytes": int(mb * 1e6), "status": status,
            "retention": 0.95, "kld_mean": kld, "ppl_ratio": ppl, "fits": fits,
            "failed_gates": ["g"] if status == "rejected" else []}


def test_lowest_kld_among_accepted_wins_not_the_smallest():
    rows = [row("q5_k_m", 112, kld=0.011, family="gguf"), row("gptq_w4", 90, kld=0.05, family="llmc"),
            row("q2_k", 88, kld=0.26, family="gguf"), row("q8_0", 145, kld=0.001, fits=False)]
    w, why = choose(rows)
    assert w["method"] == "q5_k_m" and "lowest mean KLD" in why


def test_failed_gate_is_out_and_ppl_breaks_kld_ties():
    rows = [row("q8_0", 145, "rejected", kld=0.0), row("a", 100, kld=0.02, ppl=1.05),
            row("b", 104, kld=0.02, ppl=1.02, family="llmc")]
    assert choose(rows)[0]["method"] == "b"


def test_higher_bit_preset_of_a_family_is_never_traded_for_noise():
    """Q3_K_M with a KLD a hair under Q4_K_M's (noise) must not win while Q4_K_M fits and
    has the same status; if Q4_K_M failed its gates, Q3_K_M may win."""
    rows = [row("q4_k_m", 105, kld=0.031), row("q3_k_m", 93, kld=0.030)]
    w, why = choose(rows)
    assert w["method"] == "q4_k_m" and "lower-bit preset of the same family" in why
    rows = [row("q4_k_m", 105, "rejected", kld=0.031), row("q3_k_m", 93, kld=0.030)]
    assert choose(rows)[0]["method"] == "q3_k_m"


def test_inconclusive_wins_only_when_no_accepted_fits_and_says_so():
    rows = [row("q8_0", 145, "inconclusive", kld=0.001), row("q4_k_m", 105, kld=0.03)]
    assert choose(rows)[0]["method"] == "q4_k_m"
    rows = [row("q8_0", 145, "inconclusive", kld=0.001), row("q4_k_m", 105, "rejected"),
            row("q6_k", 120, kld=0.004, fits=False)]
    w, why = choose(rows)
    assert w["method"] == "q8_0" and "NO accepted candidate fits" in why


def test_nothing_qualifies_is_no_winner():
    assert choose([row("q2_k", 88, "rejected"), dict(row("q4", 9), status="build failed")])[0] is None


def test_report_lists_every_candidate_and_why():
    cands = [dict(row("q4_k_m", 105, "rejected"), failed_gates=["retention_floor x: fail"],
                  reason="built and probed"),
             dict(row("q3_k_m", 93), reason="built and probed"),
             dict(row("q8_0", 145), reason="does not fit", fits=False)]
    md = "\n".join(render_auto({"auto": {"winner": "q3_k_m", "winner_status": "accepted",
                                         "why": "lowest KLD", "rule": "r", "headroom": 0.1,
                                         "candidates": cands}}))
    assert "Winner: **q3_k_m** (accepted)" in md and "| q3_k_m ✔ |" in md
    assert "retention_floor x: fail" in md and "does not fit" in md
    assert render_auto({}) == []
