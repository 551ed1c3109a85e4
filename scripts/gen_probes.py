"""Write the shipped probe files from the seeded generator in scripts/probegen/ (stdlib only).

    python scripts/gen_probes.py            # rewrite data/probes/*.jsonl
    python scripts/gen_probes.py --check    # exit 1 if the committed files differ from the generator

The files are generated, not edited: change the generator (or scripts/probegen/handwritten.jsonl)
and rerun; tests/probes/test_generated.py fails when the two disagree.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from probegen import build, differences  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "data" / "probes"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory of the probe files")
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    a = ap.parse_args()
    if a.check:
        bad = differences(a.out)
        for name in bad:
            print(f"{a.out / name}: differs from the generator's output", file=sys.stderr)
        return 1 if bad else 0
    a.out.mkdir(parents=True, exist_ok=True)
    for name, text in build().items():
        (a.out / name).write_text(text, encoding="utf-8")
        print(f"{a.out / name}: {text.count(chr(10))} items")
    return 0


if __name__ == "__main__":
    sys.exit(main())
