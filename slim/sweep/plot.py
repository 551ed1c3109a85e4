"""frontier.png: size against quality for every member, labelled, the frontier drawn."""
from __future__ import annotations

from pathlib import Path

from slim.fileio import atomic_path
from slim.report.headline import HEADLINE_LABEL
from slim.sweep.collect import short_labels
from slim.sweep.frontier import pareto_front


def plot_frontier(rows: list[dict], path: Path, title: str = "") -> list[str]:
    """Write the size-vs-quality plot; return the panels drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = short_labels(rows) if rows else []
    panels = []
    for key, ylabel in (("behavioral_retention", f"mean {HEADLINE_LABEL} (child / parent)"),
                        ("one_minus_kld", "1 − KLD (fidelity vs parent)")):
        if any(r.get("size_mb") is not None and r.get(key) is not None for r in rows):
            panels.append((key, ylabel))
    skipped = [f"{r['member']} ({r['status']})" for r in rows
               if r.get("size_mb") is None or all(r.get(k) is None for k, _ in panels)]
    ncols = max(1, len(panels))
    fig, axes = plt.subplots(1, ncols, figsize=(6.4 * ncols, 5.2), squeeze=False)
    for ax, (key, ylabel) in zip(axes[0], panels):
        idx = [i for i, r in enumerate(rows) if r.get("size_mb") is not None and r.get(key) is not None]
        xs = [rows[i]["size_mb"] for i in idx]
        ys = [rows[i][key] for i in idx]
        front = [idx[j] for j in pareto_front(list(zip(xs, ys)))]
        fx = [rows[i]["size_mb"] for i in front]
        fy = [rows[i][key] for i in front]
        ax.plot(fx, fy, "-", color="tab:red", lw=1.8, alpha=0.8, zorder=1,
                label="Pareto frontier (smaller and better)")
        for i in idx:
            r = rows[i]
            on = i in front
            rejected = r.get("status") == "rejected"
            fits = r.get("fits")
            col = "tab:red" if on else "tab:blue"
            ax.scatter([r["size_mb"]], [r[key]], s=70 if on else 45, zorder=3,
                       marker="X" if rejected else "o",
                       facecolors=col if fits is not False else "white", edgecolors=col,
                       linewidths=1.5)
        # legend proxies
        ax.scatter([], [], marker="o", color="tab:blue", label="member")
        ax.scatter([], [], marker="o", color="tab:red", label="member on frontier")
        if any(rows[i].get("fits") is False for i in idx):
            ax.scatter([], [], marker="o", facecolors="white", edgecolors="gray",
                       label="does not fit the hardware")
        if any(rows[i].get("status") == "rejected" for i in idx):
            ax.scatter([], [], marker="X", color="gray", label="rejected by a gate")
        if xs:
            span_x = (max(xs) - min(xs)) or max(abs(max(xs)) * 0.2, 1e-3)
            span_y = (max(ys) - min(ys)) or max(abs(max(ys)) * 0.05, 1e-3)
            ax.set_xlim(min(xs) - 0.25 * span_x, max(xs) + 0.35 * span_x)
            ax.set_ylim(min(ys) - 0.3 * span_y, max(ys) + 0.3 * span_y)
        ax.set_xlabel("artifact size (MB)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        _label_points(ax, fig, xs, ys, [labels[i] for i in idx], list(zip(fx, fy)))
    if not panels:
        ax = axes[0][0]
        ax.axis("off")
        ax.text(0.5, 0.5, "no member has both a size and a quality metric",
                ha="center", va="center", fontsize=12)
    known = [r.get("target") or {} for r in rows if (r.get("target") or {}).get("method")]
    fixed = [f"{k} {known[0][k]}" for k in ("model", "hardware")
             if known and known[0].get(k) and len({t.get(k) for t in known}) == 1]
    full = " · ".join(x for x in [title, ", ".join(fixed)] if x)
    if full:
        fig.suptitle(full, fontsize=11)
    # one legend for the figure, under the panels: inside an axis it covered members
    seen = {}
    for ax, _ in zip(axes[0], panels):
        for h, n in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(n, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=len(seen),
                   fontsize=8, frameon=False)
    if skipped:
        fig.text(0.01, 0.045, "not plotted: " + ", ".join(skipped), fontsize=8, color="dimgray",
                 ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, (0.045 if seen else 0) + (0.04 if skipped else 0), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, keep_suffix=True) as tmp:  # matplotlib picks the format by suffix
        fig.savefig(tmp, dpi=130)
    plt.close(fig)
    return [k for k, _ in panels]


def _label_points(ax, fig, xs, ys, labels, line_xy=()) -> None:
    """Annotate each point next to it; try offsets until the label overlaps no other label,
    point, frontier segment or the legend, and stays inside the axes."""
    if not xs:
        return
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axbox = ax.get_window_extent(renderer)
    pts = [tuple(ax.transData.transform((x, y))) for x, y in zip(xs, ys)]
    seg = [tuple(ax.transData.transform(p)) for p in line_xy]
    for (x0, y0), (x1, y1) in zip(seg, seg[1:]):
        pts += [(x0 + (x1 - x0) * t / 24, y0 + (y1 - y0) * t / 24) for t in range(1, 24)]
    placed = []
    leg = ax.get_legend()
    if leg is not None:
        placed.append(leg.get_window_extent(renderer))
    dirs = [(1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0)]
    cands = [(r * dx, r * dy) for r in (9, 24, 40, 58, 78) for dx, dy in dirs]
    order = sorted(range(len(xs)), key=lambda i: (xs[i], ys[i]))
    for i in order:
        chosen = None
        for n, (dx, dy) in enumerate(cands):
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
            far = abs(dx) + abs(dy) > 12
            t = ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points",
                            ha=ha, va=va, fontsize=9.5,
                            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.75),
                            arrowprops=dict(arrowstyle="-", color="dimgray", lw=0.7,
                                            shrinkA=0, shrinkB=5) if far else None, zorder=4)
            bb = t.get_window_extent(renderer)
            ok = (not any(bb.overlaps(o) for o in placed)
                  and not any(bb.x0 - 4 <= px <= bb.x1 + 4 and bb.y0 - 4 <= py <= bb.y1 + 4
                              for px, py in pts)
                  and bb.x0 >= axbox.x0 and bb.x1 <= axbox.x1
                  and bb.y0 >= axbox.y0 and bb.y1 <= axbox.y1)
            if ok or n == len(cands) - 1:
                chosen = bb
                break
            t.remove()
        placed.append(chosen)
