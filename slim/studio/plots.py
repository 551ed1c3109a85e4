"""The studio's plots, drawn by the code that draws the sweep summaries and reports: a
parent's size-vs-quality frontier is ``slim.sweep.plot_frontier`` over its variants' rows
(``slim.sweep.member_row``), cached until one of their report.json files changes."""
from __future__ import annotations

import threading
from pathlib import Path

_LOCK = threading.Lock()  # matplotlib's pyplot state is not thread-safe


def _reports_signature(dirs: list[Path]) -> tuple:
    sig = []
    for d in dirs:
        try:
            st = (d / "report.json").stat()
            sig.append((str(d), st.st_size, st.st_mtime_ns))
        except OSError:
            sig.append((str(d), None, None))
    return tuple(sig)


class FrontierPlots:
    """PNG bytes of a parent's frontier, redrawn only when its variants change."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self._memo: dict[str, tuple[tuple, bytes]] = {}

    def parent_png(self, slug: str, title: str, build_dirs: list[Path]) -> bytes:
        from slim.sweep import member_row, plot_frontier
        sig = _reports_signature(build_dirs)
        hit = self._memo.get(slug)
        if hit is not None and hit[0] == sig:
            return hit[1]
        rows = [member_row(d, verify=False) for d in build_dirs]
        path = self.out_dir / f"frontier-{slug}.png"
        with _LOCK:
            plot_frontier(rows, path, title)
            data = path.read_bytes()
        self._memo[slug] = (sig, data)
        return data
