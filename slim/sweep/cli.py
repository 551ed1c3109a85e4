"""``python -m slim.sweep``: summarise builds or a sweep dir, flat metrics and target lists for DVC."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from omegaconf import OmegaConf

from slim.fileio import write_json
from slim.sweep.collect import metrics_of
from slim.sweep.summary import summarise, summarise_sweep


def write_metrics(build_dir, out_file) -> dict:
    """Flat metrics of one build, written outside its (signed) folder for DVC."""
    build = Path(build_dir)
    report = json.loads((build / "report.json").read_text(encoding="utf-8"))
    m = {"build": report.get("build") or build.name, **metrics_of(report)}
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, m)
    return m


def targets(group: str, params_file="params.yaml") -> list[str]:
    p = OmegaConf.load(params_file)
    sel = OmegaConf.select(p, group)
    if sel is None:
        raise SystemExit(f"no '{group}' in {params_file}")
    return [str(k) for k in sel.keys()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m slim.sweep", description="Sweep summaries: one table and one size-vs-quality plot for every member of a sweep.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summarise", help="summarise build folders into --out")
    s.add_argument("builds", nargs="+")
    s.add_argument("--out", required=True)
    s.add_argument("--title", default="")
    s.add_argument("--no-verify", action="store_true", help="skip signature verification")
    r = sub.add_parser("resummarise", help="rewrite a sweep dir's summary from its member.json files")
    r.add_argument("sweep_dir")
    m = sub.add_parser("metrics", help="write one build's flat metrics JSON (for dvc metrics)")
    m.add_argument("build")
    m.add_argument("out")
    st = sub.add_parser("summarise-targets",
                        help="summarise the builds of a target list in params.yaml (DVC stage)")
    st.add_argument("group")
    st.add_argument("--out", required=True)
    st.add_argument("--params", default="params.yaml")
    st.add_argument("--builds", default="builds")
    st.add_argument("--title", default="")
    t = sub.add_parser("targets", help="print the build names of a target list in params.yaml")
    t.add_argument("group")
    t.add_argument("--params", default="params.yaml")
    a = ap.parse_args(argv)
    if a.cmd == "summarise":
        summ = summarise(a.builds, a.out, title=a.title, verify=not a.no_verify)
        print(f"{a.out}/summary.md: {len(summ['members'])} members")
    elif a.cmd == "resummarise":
        summarise_sweep(a.sweep_dir, final=True)
        print(f"{a.sweep_dir}/summary.md")
    elif a.cmd == "metrics":
        write_metrics(a.build, a.out)
    elif a.cmd == "summarise-targets":
        dirs = [Path(a.builds) / n for n in targets(a.group, a.params)]
        summ = summarise(dirs, a.out, title=a.title or f"{a.group} targets")
        bad = [r["member"] for r in summ["members"]
               if r["status"] not in ("accepted", "rejected", "inconclusive", "ungated")]
        print(f"{a.out}/summary.md: {len(dirs)} targets" + (f"; missing: {', '.join(bad)}" if bad else ""))
        if bad:
            return 1
    elif a.cmd == "targets":
        print("\n".join(targets(a.group, a.params)))
    return 0
