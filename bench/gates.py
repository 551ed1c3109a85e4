"""False-reject rate of a probe suite's gates when the child equals the parent.

The child is the parent, resampled: each replicate draws the suite again (items with
replacement, within each category: another suite from the same population of items) and
gives the child the parent's own outcome on each item, except that with probability r the
outcome is redrawn from the parent's pass rate in that category (leak flags likewise): a
child of exactly the parent's quality whose answers differ on some items. r = 0 is a literal
repeat of greedy decoding, r = 1 a child whose outcomes are independent of the parent's;
``--redraw`` picks the rates (default 0, 0.1, 0.25, 0.5, 1). KLD and PPL ratio are those of
the parent itself (0 and 1). The gates are the suite's own (``conf/probes/<suite>.yaml``), evaluated by the same
code as a build; a replicate is a false reject when any gate fails.

    python bench/gates.py                        # parent probes of a default-suite build in builds/
    python bench/gates.py --probes probes.json   # a probe_run output (or JSONL of its results)
    python bench/gates.py --simulate             # size of the retention test at the floor

``--simulate`` checks the other error: a child whose true retention is *exactly* the floor
(on a population of items with the given parent pass rate and rate of gains on the parent's
failures) must pass the floor at most 1 − confidence of the time. It prints that rate per
suite size, parent pass rate and gain rate, and the pass rate of a child that keeps
everything (power).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_results(path: Path) -> list[dict]:
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    d = json.loads(text)
    return d["results"] if isinstance(d, dict) else d


def find_parent_probes(builds: Path, suite: str) -> Path | None:
    """probes.json of the parent of the newest build in *builds* that ran *suite*."""
    import os
    cache = Path(os.environ.get("SLIM_CACHE_DIR") or Path.home() / ".cache" / "slim")
    reports = sorted(builds.glob("*/report.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for rp in reports:
        r = json.loads(rp.read_text())
        if (r.get("target") or {}).get("probes") != suite:
            continue
        for s in r.get("steps") or []:
            if s["id"] == "probes:parent":
                p = cache / "objects" / s["key"][:2] / s["key"] / "data" / "probes.json"
                if p.is_file():
                    return p
    return None


def replicate(parent: list[dict], redraw: float, rng: random.Random) -> tuple[list[dict], list[dict]]:
    """One (parent, child) pair of result lists: the suite resampled, the child equal in quality."""
    by_cat: dict[str, list[dict]] = {}
    for r in parent:
        by_cat.setdefault(r["category"], []).append(r)
    P, C = [], []
    for cat, rows in sorted(by_cat.items()):
        pass_rate = sum(1 for r in rows if r["passed"]) / len(rows)
        leak_rate = sum(1 for r in rows if r.get("leaks")) / len(rows)
        for j in range(len(rows)):
            r = rows[rng.randrange(len(rows))]
            rid = f"{cat}#{j}"
            passed, leaked = bool(r["passed"]), bool(r.get("leaks"))
            child_passed = (rng.random() < pass_rate) if rng.random() < redraw else passed
            child_leaked = (rng.random() < leak_rate) if rng.random() < redraw else leaked
            P.append({"id": rid, "category": cat, "passed": passed,
                      "leaks": [{"kind": "x"}] if leaked else []})
            C.append({"id": rid, "category": cat, "passed": child_passed,
                      "leaks": [{"kind": "x"}] if child_leaked else []})
    return P, C


def paired_suite(rng: random.Random, n: int, pp: float, keep: float, gain: float):
    """Cell counts (both, lost, gained, neither) of *n* items: the parent passes each with
    probability *pp*; the child keeps a parent pass with *keep*, passes a parent failure with
    *gain*."""
    a = b = c = d = 0
    for _ in range(n):
        p = rng.random() < pp
        ch = rng.random() < (keep if p else gain)
        a += p and ch
        b += p and not ch
        c += (not p) and ch
        d += (not p) and not ch
    return a, b, c, d


def passes_floor(cells, floor: float, z: float) -> bool:
    """The retention gate's pass rule on cell counts (the score statistic clears z)."""
    from slim.probes.intervals import paired_ratio_score
    a, b, c, d = cells
    return bool(a + b) and paired_ratio_score(a, b, c, d, floor) >= z


def simulate(replicates: int, seed: int, confidence: float = 0.95, floor: float = 0.8) -> int:
    """Size (false passes at the floor) and power of the retention floor by simulation."""
    from scipy.stats import norm

    z = float(norm.ppf(confidence))
    print(f"retention floor {floor} at confidence {confidence}, {replicates} suites per row\n")
    print("| items | parent pass rate | gain rate on parent's failures | pass rate at the floor "
          "(size) | pass rate, child = parent with 10% flips (power) |")
    print("|---|---|---|---|---|")
    worst = 0.0
    rng = random.Random(seed)
    for n in (10, 30, 150, 500):
        for pp in (0.1, 0.4, 0.9):
            for q0 in (0.0, 0.05, 0.2):
                q1 = (floor * pp - (1 - pp) * q0) / pp
                if not 0 <= q1 <= 1:
                    continue
                rates = [sum(passes_floor(paired_suite(rng, n, pp, keep, gain), floor, z)
                              for _ in range(replicates)) / replicates
                         for keep, gain in ((q1, q0), (1 - 0.1 * (1 - pp), 0.1 * pp))]
                worst = max(worst, rates[0])
                print(f"| {n} | {pp} | {q0} | {rates[0]:.1%} | {rates[1]:.1%} |", flush=True)
    ok = worst <= (1 - confidence) * 1.2
    print(f"\nworst size {worst:.1%} vs nominal {1 - confidence:.0%} "
          f"(allowing simulation error of 20%): {'OK' if ok else 'TOO HIGH'}")
    return 0 if ok else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probes", type=Path, help="parent probe results (probes.json or .jsonl)")
    ap.add_argument("--builds", type=Path, default=ROOT / "builds")
    ap.add_argument("--suite", default="default", help="conf/probes/<suite>.yaml whose gates apply")
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--redraw", type=float, action="append",
                    help="share of items whose outcome is redrawn; default 0 0.1 0.25 0.5 1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--simulate", action="store_true",
                    help="size and power of the retention floor test by simulation")
    a = ap.parse_args(argv)
    if a.simulate:
        return simulate(a.replicates, a.seed)

    from omegaconf import OmegaConf

    from slim.probes.gates import evaluate_gates
    from slim.probes.scoring import score_categories

    src = a.probes or find_parent_probes(a.builds, a.suite)
    if src is None:
        print(f"no parent probe results: build a target with probes={a.suite} first (make run), "
              f"or pass --probes", file=sys.stderr)
        return 1
    parent = load_results(src)
    gates = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "probes" / f"{a.suite}.yaml").gates,
                                   resolve=True)
    conf = gates.get("confidence") or 0.95
    fid = {"kld_mean": 0.0, "kld_mean_stderr": 0.0, "ppl_ratio": 1.0, "ln_ppl_ratio_stderr": 0.0,
           "tokens": 4080}
    cats = Counter(r["category"] for r in parent)
    print(f"parent results: {src} ({len(parent)} items, {len(cats)} categories, "
          f"{sum(r['passed'] for r in parent)} passed)")
    print(f"gates of probes={a.suite} at confidence {conf}; {a.replicates} replicates per row\n")
    print("| child = parent, outcomes redrawn | rejected (false reject) | inconclusive | accepted | "
          "most frequent failed gates | most frequent undecided gates |")
    print("|---|---|---|---|---|---|")
    worst = 0.0
    for redraw in a.redraw or [0.0, 0.1, 0.25, 0.5, 1.0]:
        rng = random.Random(a.seed)
        status, failed, undecided = Counter(), Counter(), Counter()
        for _ in range(a.replicates):
            P, C = replicate(parent, redraw, rng)
            res = evaluate_gates(score_categories(P, C, confidence=conf), fid, gates)
            outs = [g["outcome"] for g in res]
            st = ("rejected" if "fail" in outs else "accepted" if all(o == "pass" for o in outs)
                  else "inconclusive")
            status[st] += 1
            failed.update(f"{g['name']} {g['category'] or ''}".strip() for g in res
                          if g["outcome"] == "fail")
            undecided.update(f"{g['name']} {g['category'] or ''} ({g['outcome']})".strip()
                             for g in res if g["outcome"] in ("inconclusive", "unverified"))
        n = a.replicates
        worst = max(worst, status["rejected"] / n)
        top = ", ".join(f"{k} ×{v}" for k, v in failed.most_common(2)) or "–"
        und = ", ".join(f"{k} ×{v}" for k, v in undecided.most_common(3)) or "–"
        print(f"| {redraw:.2f} | {status['rejected'] / n:.1%} | {status['inconclusive'] / n:.1%} | "
              f"{status['accepted'] / n:.1%} | {top} | {und} |", flush=True)
    ok = worst <= 1 - conf
    print(f"\nworst false-reject rate {worst:.1%} {'≤' if ok else '>'} {1 - conf:.0%} "
          f"(1 − confidence): {'OK' if ok else 'TOO HIGH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
