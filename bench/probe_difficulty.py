"""Pass rate of the parent on the shipped probe items, per category and difficulty level.

Why: a level the parent passes 0% (or 100% on a category meant to discriminate) of
gives a retention estimate no information; data/README.md quotes these numbers and the
generator (scripts/probegen/) is tuned from them.

The parent is run exactly as the probe step runs it: the F16 GGUF the build plans for
the parent (import + conversion, taken from or added to ``$SLIM_CACHE_DIR``), opened by
``slim.runtimes.open_runtime`` with n_ctx 2048, the suite's ``max_tokens``, greedy
decoding (batched like the probe step where the runtime has ``chat_batch``), scored
by ``slim.probes.suite.score_item`` with the real checkers.  A seeded
sample of at most ``--per-level`` items is drawn per category and level (hand-written
items, which have no level, count as level "-").

Usage: python bench/probe_difficulty.py [--per-level 20] [--categories 'behavioral/*']
       [--out results.jsonl] [hydra overrides, e.g. threads=1]
Prints one row per category and level; ``--out`` keeps every output for inspection.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path


def compose(overrides):
    from hydra import compose as hc
    from hydra import initialize_config_dir

    import slim.config  # noqa: F401
    from slim.paths import CONF
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hc(config_name="config", overrides=overrides)


def parent_gguf(cfg) -> Path:
    """The parent's F16 GGUF as the build's probe step sees it (cached steps reused)."""
    from slim.build import open_store
    from slim.executor import EventLog, Executor
    from slim.plan import Planner, input_path

    planner = Planner(cfg)
    art = planner.gguf_f16(planner.parent())
    ex = Executor(open_store(cfg), EventLog(None), cfg.threads)
    resolved = ex.run(planner.steps)
    return input_path(resolved, art)


def sample(items: list[dict], per_level: int, seed: int) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for it in items:
        groups[(it["category"], it.get("level", "-"))].append(it)
    rng = random.Random(seed)
    out = []
    for key in sorted(groups, key=str):
        g = groups[key]
        out += g if len(g) <= per_level else rng.sample(g, per_level)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-level", type=int, default=20)
    ap.add_argument("--categories", default="*", help="comma-separated globs")
    ap.add_argument("--data", type=Path, default=None, help="probe data directory (default: the shipped one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gguf", type=Path, default=None,
                    help="run this GGUF instead of the planned parent F16 GGUF")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="sequences decoded together when the runtime batches (default: the probe step's)")
    ap.add_argument("--out", type=Path, default=None, help="write every result as JSONL")
    a, overrides = ap.parse_known_args()
    if a.batch_size is None:
        from slim.steps.probe_run import Params
        a.batch_size = Params().batch_size
    cfg = compose(overrides)

    from slim.probes.suite import load_items, run_items, score_item
    from slim.runtimes import open_runtime

    pats = a.categories.split(",")
    items = [it for it in load_items(["*"], data_dir=a.data) if any(fnmatch.fnmatchcase(it["category"], p) for p in pats)]
    items = sample(items, a.per_level, a.seed)
    gguf = a.gguf or parent_gguf(cfg)
    max_tokens = int(cfg.probes.max_tokens)
    print(f"{len(items)} items on {gguf} (max_tokens {max_tokens}, greedy, threads {cfg.threads})",
          file=sys.stderr)
    t0 = time.time()
    results = []
    out = open(a.out, "w") if a.out else None
    with open_runtime(str(gguf), n_ctx=2048, threads=cfg.threads) as rt:
        batched = hasattr(rt, "chat_batch") and a.batch_size > 1
        chunk = 4 * a.batch_size if batched else 1
        for i in range(0, len(items), chunk):  # in chunks, so a long run can be watched via --out
            part = items[i:i + chunk]
            if batched:  # as the probe step decodes (answers equal one-at-a-time up to rounding)
                outs = rt.chat_batch([[dict(m) for m in it["messages"]] for it in part], max_tokens,
                                     batch_size=a.batch_size)
                rs = [score_item(it, o) for it, o in zip(part, outs)]
            else:
                rs = run_items(rt.chat, part, max_tokens, progress=False)
            for it, r in zip(part, rs):
                r["level"] = it.get("level", "-")
                results.append(r)
                if out:
                    out.write(json.dumps(r, ensure_ascii=False) + "\n")
                    out.flush()
    tally: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        for key in ((r["category"], r["level"]), (r["category"], "all")):
            tally[key][0] += r["passed"]
            tally[key][1] += 1
    print(f"{'category':26} {'level':>5} {'passed':>8} {'rate':>6}")
    for (cat, lvl), (p, n) in sorted(tally.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        print(f"{cat:26} {str(lvl):>5} {p:>4}/{n:<3} {p / n:6.2f}")
    print(f"{len(results)} items in {time.time() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
