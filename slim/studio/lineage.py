"""A build's lineage as a tree: the parent model, the steps that made and measured the child
(from steps.json: each step's cache key and the step keys and file digests it consumed), and
the child artifact with its file digests."""
from __future__ import annotations

import json
from pathlib import Path


def _short(d: str | None, n: int = 16) -> str:
    if not d:
        return "?"
    return str(d).split(":", 1)[-1][:n]


def load_steps(build_dir: Path) -> list[dict]:
    p = Path(build_dir) / "steps.json"
    try:
        steps = json.loads(p.read_text(encoding="utf-8")) if p.is_file() else []
    except (OSError, ValueError):
        return []
    return [s for s in steps if isinstance(s, dict) and s.get("id") and s.get("key")]


def artifact_step_id(report: dict, steps: list[dict]) -> str | None:
    """The step whose output is the artifact: the method's last stage (``<kind>:<index>``)."""
    stages = (report.get("method") or {}).get("stages") or []
    if not stages:
        return None
    want = f"{stages[-1].get('kind')}:{len(stages) - 1}"
    return want if any(s["id"] == want for s in steps) else None


def step_tree(report: dict, steps: list[dict]) -> dict:
    """{"parent", "child", "ancestry", "measured"}.

    ``ancestry``: the tree of steps the artifact was made from, rooted at the artifact step;
    a node is {id, kind, key, files: [(input, digest)], inputs: [node], seen, root} with
    ``inputs`` the steps whose outputs it consumed (a step reached twice is listed in full once,
    then as a reference: ``seen``) and ``root`` set on the step that imported the parent.
    ``measured``: every other step (fidelity, probes, speed, ...) with the steps it read."""
    by_key = {s["key"]: s for s in steps}
    by_id = {s["id"]: s for s in steps}
    step_inputs: dict[str, list[str]] = {}
    file_inputs: dict[str, list[tuple[str, str]]] = {}
    for s in steps:
        ins = ((s.get("material") or {}).get("inputs") or {})
        step_inputs[s["id"]], file_inputs[s["id"]] = [], []
        for name, v in sorted(ins.items()):
            v = str(v)
            if v.startswith("step:") and v[5:] in by_key:
                step_inputs[s["id"]].append(by_key[v[5:]]["id"])
            else:
                file_inputs[s["id"]].append((name, v))
    parent = report.get("parent") or {}
    art = artifact_step_id(report, steps)
    seen: set[str] = set()
    made_from: set[str] = set()

    def node(sid: str) -> dict:
        s = by_id[sid]
        n = {"id": sid, "kind": s.get("kind"), "key": s["key"], "files": file_inputs[sid],
             "root": s["key"] == parent.get("step_key") or (not step_inputs[sid] and sid == "import_parent"),
             "seen": sid in seen, "inputs": []}
        made_from.add(sid)
        if sid in seen:
            return n
        seen.add(sid)
        n["inputs"] = [node(d) for d in step_inputs[sid]]
        return n

    ancestry = node(art) if art else None
    measured = [{"id": s["id"], "kind": s.get("kind"), "key": s["key"], "inputs": step_inputs[s["id"]],
                 "files": file_inputs[s["id"]]} for s in steps if s["id"] not in made_from]
    art_files = ((report.get("artifact") or {}).get("files") or {})
    return {
        "parent": {"id": parent.get("id"), "digest": parent.get("digest"), "build": parent.get("build"),
                   "step_key": parent.get("step_key")},
        "ancestry": ancestry,
        "measured": measured,
        "child": {"build": report.get("build"), "artifact_step": art,
                  "files": [(k, (v or {}).get("sha256") if isinstance(v, dict) else v)
                            for k, v in sorted(art_files.items())]},
    }
