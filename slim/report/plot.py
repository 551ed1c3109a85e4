"""retention.png: retention (child/parent) per probe category with its 95% interval."""
from __future__ import annotations

from pathlib import Path

PLOT_NAME = "retention.png"


def retention_plot(report: dict, path: Path) -> Path | None:
    """Horizontal bars of retention per category, whiskers = paired-bootstrap 95% interval;
    categories whose parent scored 0 (retention undefined) are listed, not drawn."""
    cats = ((report.get("metrics") or {}).get("probes") or {}).get("categories") or {}
    if not cats:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(cats)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.6), dpi=110)
    for y, name in enumerate(names):
        c = cats[name]
        r = c.get("retention")
        if r is None:
            ax.text(0.02, y, f"retention undefined: parent scored 0/{c.get('n')}", va="center",
                    ha="left", fontsize=8, color="0.35")
            continue
        lo, hi = c.get("ci_low"), c.get("ci_high")
        xerr = [[r - lo], [hi - r]] if lo is not None and hi is not None else None
        ax.barh(y, r, color="#4C72B0" if r >= 1 else "#DD8452", alpha=0.85)
        ax.errorbar(r, y, xerr=xerr, fmt="none", ecolor="black", capsize=3, lw=1)
        ax.text(0.02, y, f"n={c.get('n')}", va="center", fontsize=7, color="white")
    ax.axvline(1.0, color="0.3", lw=1, ls="--")
    top = max([1.0] + [c["ci_high"] for c in cats.values() if c.get("ci_high") is not None]
              + [c["retention"] for c in cats.values() if c.get("retention") is not None])
    ax.set_xlim(0, top * 1.08)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("retention = child score / parent score (95% paired bootstrap interval)")
    t = report.get("target") or {}
    ax.set_title(f"{t.get('model')} · {t.get('method')} vs parent — probe retention", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
