"""The probe items a build runs: selected from the shipped data and the user's own directory.

Inputs ``data00``, ``data01`` … are probe data directories (the shipped ``data/probes`` and,
with ``probes.data=<dir>``, the user's), so their file digests are in this step's key and,
through its output, in every probe step's key. Output: ``items.jsonl`` (the selected items,
same schema, one file the probe steps read) and ``sources.json`` (where each item came from:
directory, origin, file sha256, items taken), which the report quotes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

VERSION = 1
LIBS: tuple = ()


@dataclass
class Params:
    categories: list = field(default_factory=list)
    max_items: Optional[int] = None
    #: origin of each input directory, by input name ("shipped" or "user")
    origins: dict = field(default_factory=dict)


def run(ctx):
    import hashlib
    import json
    from pathlib import Path

    from slim.probes.suite import _read_file, load_items, probe_files

    p = ctx.params
    names = sorted(k for k in ctx.inputs if k.startswith("data"))
    dirs = [Path(ctx.inputs[k]) for k in names]
    items = load_items(list(p.categories), p.max_items, data_dir=dirs)
    taken = {it["id"] for it in items}
    sources = []
    for name, d in zip(names, dirs):
        files = []
        for f in probe_files(d):
            ids = [it["id"] for _, it in _read_file(f)]
            files.append({"file": f.name, "sha256": hashlib.sha256(f.read_bytes()).hexdigest(),
                          "items": len(ids), "selected": sum(1 for i in ids if i in taken)})
        sources.append({"origin": p.origins.get(name, "user"), "dir": str(d), "files": files})
    with open(ctx.out / "items.jsonl", "w", encoding="utf-8") as fh:
        for it in items:
            fh.write(json.dumps(it, ensure_ascii=False, sort_keys=True) + "\n")
    ctx.write_json("sources.json", {"categories": list(p.categories), "max_items": p.max_items,
                                    "items": len(items), "sources": sources})
