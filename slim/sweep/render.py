"""summary.md and summary.csv of a sweep summary."""
from __future__ import annotations

import csv
import io

from slim.report.headline import HEADLINE_LABEL
from slim.sweep.collect import short_labels


COLUMNS = [("member", "member"), ("status", "status"), ("size_mb", "size MB"),
           ("size_vs_parent", "of parent"), ("bpw", "bpw"),
           ("ppl_ratio", "PPL ratio"), ("kld_mean", "KLD"), ("top1_agreement", "top-1"),
           ("behavioral_retention", HEADLINE_LABEL), ("runtime", "eval runtime"), ("fits", "fits"),
           ("signature", "signature"),
           ("cached_steps", "cached steps"), ("seconds", "seconds"), ("on_frontier", "Pareto")]


def _fmt(key: str, v) -> str:
    if key == "on_frontier":
        return ", ".join({"behavioral_retention": "retention", "one_minus_kld": "KLD"}.get(x, x)
                         for x in v) if v else ""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if key == "size_mb":
        return f"{v:.2f}" if v < 100 else f"{v:.1f}"
    if key == "size_vs_parent":
        return f"{100 * v:.1f}%"
    if key == "kld_mean":
        return f"{v:.5f}"
    if key == "top1_agreement":
        return f"{100 * v:.1f}%"
    if key in ("ppl_ratio", "behavioral_retention", "retention", "bpw"):
        return f"{v:.3f}" if key != "bpw" else f"{v:.2f}"
    if key == "seconds":
        return f"{v:.1f}"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: dict) -> str:
    rows = summary["members"]
    out = [f"# Sweep summary{': ' + summary['title'] if summary.get('title') else ''}", ""]
    out.append(f"{len(rows)} member(s), written {summary['created']}"
               + ("" if summary.get("complete", True) else
                  f" — INCOMPLETE: {summary.get('reported', len(rows))} of "
                  f"{summary.get('expected')} expected members reported") + ".")
    if summary.get("frontier"):
        for key, names in summary["frontier"].items():
            out.append(f"Pareto frontier (size vs {key.replace('_', ' ')}): {', '.join(names) or '–'}.")
    out.append("")
    out.append("| " + " | ".join(h for _, h in COLUMNS) + " |")
    out.append("|" + "|".join("---" if k in ("member", "status", "signature", "on_frontier") else "---:"
                              for k, _ in COLUMNS) + "|")
    for r in rows:
        out.append("| " + " | ".join(_md_cell(_fmt(k, r.get(k))) for k, _ in COLUMNS) + " |")
    cats = summary.get("categories") or []
    if cats:
        labels = short_labels(rows)
        out += ["", "## Retention per probe category (child score / parent score)", "",
                "| category | " + " | ".join(_md_cell(m) for m in labels) + " |",
                "|---|" + "---:|" * len(labels)]
        for c in cats:
            out.append(f"| {c} | " + " | ".join(_fmt("retention", r["retention"].get(c))
                                                 for r in rows) + " |")
    notes = [r for r in rows if r.get("error") or r.get("signature_detail") or r.get("gates_failed")]
    if notes:
        out += ["", "## Notes", ""]
        for r in notes:
            if r.get("error"):
                out.append(f"- **{r['member']}** ({r['status']}): {_md_cell(str(r['error']))[:600]}")
            if r.get("gates_failed"):
                out.append(f"- **{r['member']}** failed gates: {'; '.join(r['gates_failed'])}")
            if r.get("signature_detail"):
                out.append(f"- **{r['member']}** signature {r['signature']}: {r['signature_detail']}")
    if summary.get("duplicates"):
        out += ["", "**Warning:** members share a build folder, the later overwrote the earlier: "
                + ", ".join(summary["duplicates"]) + " (set build_name per member)."]
    out += ["", "Columns: size = artifact bytes / 1e6; bpw = bits per weight; PPL ratio, KLD and "
            "top-1 compare child and parent on the same held-out tokens, in the eval runtime "
            "(both parent and child run there: llama.cpp for GGUF, transformers for folders); "
            "behavioral retention = mean of the behavioral categories' child/parent probe scores (safety and leakage are gated "
            "on their own, see slim/report/headline.py); fits = fits the hardware tier with its KV "
            "cache; signature = `python -m slim.verify` state; cached steps = steps served by the "
            "shared cache.", "", "![size vs quality](frontier.png)", ""]
    return "\n".join(out)


def render_csv(summary: dict) -> str:
    cats = summary.get("categories") or []
    head = ["member", "status", "size_mb", "size_vs_parent", "bpw", "ppl_ratio", "kld_mean",
            "one_minus_kld", "top1_agreement", "behavioral_retention", "runtime"] + \
        [f"retention/{c}" for c in cats] + \
        ["fits", "signature", "cached_steps", "seconds", "build_seconds", "error", "build_dir",
         "overrides"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for r in summary["members"]:
        vals = []
        for h in head:
            if h.startswith("retention/"):
                v = r["retention"].get(h[len("retention/"):])
            elif h == "overrides":
                v = " ".join(r.get("overrides") or [])
            else:
                v = r.get(h)
            if isinstance(v, float):
                v = round(v, 6)
            vals.append("" if v is None else v)
        w.writerow(vals)
    return buf.getvalue()
