"""method=auto: choose the build for the tier instead of the hype.

1. candidates the tier runs natively (capability data, no tier names in code);
2. estimated size + KV cache + overhead must fit usable memory with headroom;
3. build and probe the fitting candidates in quality order (they share the cache);
4. winner: the smallest build whose gates pass; among builds within ``size_tolerance``
   of the smallest, the one with the highest behavioral retention (then lowest KLD).
The winner is re-published (fully cached) as ``<model>-auto-<hardware>`` with an ``auto``
section listing every candidate, its size, fit and measured or skipped status.
"""
from __future__ import annotations

from slim.report.gates import failed_gates
from slim.report.headline import headline_retention

import json
import sys

from omegaconf import OmegaConf, open_dict

from slim.errors import SlimError


def member_cfg(cfg, name: str):
    """The same target with method=<name>, typed by the MethodConfig schema."""
    from slim.config.schema import MethodConfig
    from slim.paths import CONF
    m = cfg.copy()
    with open_dict(m):
        m.method = OmegaConf.merge(OmegaConf.structured(MethodConfig),
                                   OmegaConf.load(CONF / "method" / f"{name}.yaml"))
        m.build_name = None
    return m


def choose(rows: list[dict], tolerance: float) -> dict | None:
    passed = [r for r in rows if r["status"] == "accepted"]
    if not passed:
        return None
    smallest = min(r["bytes"] for r in passed)
    close = [r for r in passed if r["bytes"] <= smallest * (1 + tolerance)]
    return max(close, key=lambda r: ((r["retention"] if r["retention"] is not None else -1),
                                     -(r["kld_mean"] if r["kld_mean"] is not None else 1e9),
                                     -r["bytes"]))


def run_auto(cfg):
    from slim.build import default_build_name, run_build
    from slim.planview import candidate_rows
    from slim.config.validate import all_methods

    me = cfg.method
    methods = all_methods()
    est = {r["method"]: r for r in candidate_rows(cfg, list(me.candidates), me.headroom)}
    rows, fitting = [], []
    for name in me.candidates:
        e = est[name]
        row = {"method": name, "estimated_bytes": e.get("bytes"), "status": "skipped"}
        if "error" in e:
            row["reason"] = e["error"]
        elif not e["runs_natively"]:
            row["reason"] = e["problems"][0]
        elif not e["fit"]["fits"]:
            f = e["fit"]
            row["reason"] = (f"does not fit with {me.headroom:.0%} headroom: needs "
                             f"{f['total_bytes'] / 2**30:.2f} GiB of {f['usable_bytes'] / 2**30:.2f} GiB")
        else:
            fitting.append(name)
            row["reason"] = "fits (estimate)"
        rows.append(row)
    if not fitting:
        raise SlimError(_nothing_fits(cfg, est, methods))
    to_build = fitting[: me.max_builds] if me.max_builds else fitting
    print(f"method=auto on {cfg.hardware.name}: building {', '.join(to_build)} "
          f"(skipped: {', '.join(r['method'] for r in rows if r['method'] not in fitting) or 'none'})",
          file=sys.stderr)
    reports = {}
    for name in to_build:
        out = run_build(member_cfg(cfg, name), quiet=True)
        rep = json.loads((out / "report.json").read_text())
        reports[name] = rep
        row = next(r for r in rows if r["method"] == name)
        fid = (rep.get("metrics") or {}).get("fidelity") or {}
        row.update({"status": rep["status"], "bytes": rep["artifact"]["bytes"],
                    "bpw": rep["artifact"].get("bpw"), "fits": (rep.get("fit") or {}).get("fits"),
                    "retention": headline_retention(rep), "kld_mean": fid.get("kld_mean"),
                    "failed_gates": failed_gates(rep), "build": rep["build"],
                    "reason": "built and probed"})
        print(f"  {name:10} {row['bytes'] / 1e6:8.1f} MB  retention "
              f"{row['retention'] if row['retention'] is None else round(row['retention'], 3)}  "
              f"KLD {row['kld_mean']}  {row['status']}", file=sys.stderr)
    for r in rows:
        if r["method"] in fitting and r["method"] not in to_build:
            r["reason"] = f"not built (method.max_builds={me.max_builds})"
    built = [r for r in rows if r["method"] in reports]
    winner = choose([r for r in built if r.get("fits")], me.size_tolerance)
    if winner is None:
        raise SlimError("method=auto: no candidate passed the gates of probes="
                        f"{cfg.probes.name}: " + "; ".join(
                            f"{r['method']}: {', '.join(r['failed_gates']) or 'does not fit'}"
                            for r in built))
    why = (f"{winner['method']} is the smallest build whose gates pass"
           if winner["bytes"] == min(r["bytes"] for r in built if r["status"] == "accepted")
           else f"{winner['method']} is within {me.size_tolerance:.0%} of the smallest passing "
                f"build and has higher retention")
    auto = {"auto": {"winner": winner["method"], "why": why, "candidates": rows,
                     "rule": "smallest accepted build that fits; within size_tolerance prefer "
                             "higher behavioral retention, then lower KLD",
                     "headroom": me.headroom, "size_tolerance": me.size_tolerance}}
    final_cfg = member_cfg(cfg, winner["method"])
    with open_dict(final_cfg):
        final_cfg.build_name = cfg.build_name or default_build_name(cfg, "auto")
    return run_build(final_cfg, extra_report=auto)


def _nothing_fits(cfg, est, methods) -> str:
    from slim.hardware import fit_report
    from slim.paths import CONF
    from slim.planview import model_arch
    ok = [e for e in est.values() if "error" not in e and e["runs_natively"]]
    if not ok:
        return (f"method=auto: hardware {cfg.hardware.name} runs none of the candidates natively "
                f"({', '.join(est)}); add candidates this tier runs or pick another tier")
    smallest = min(ok, key=lambda e: e["bytes"])
    arch = model_arch(cfg)
    hw = OmegaConf.to_container(cfg.hardware, resolve=True)
    ctx = None
    c = hw["context_length"]
    while c >= 256:
        c //= 2
        if fit_report(hw, smallest["bytes"], arch, c, cfg.method.headroom)["fits"]:
            ctx = c
            break
    tiers = []
    for f in sorted((CONF / "hardware").glob("*.yaml")):
        t = OmegaConf.to_container(OmegaConf.load(f), resolve=True)
        if fit_report(t, smallest["bytes"], arch, None, cfg.method.headroom)["fits"]:
            tiers.append(t["name"])
    f = smallest["fit"]
    hints = [f"a smaller model (the smallest candidate, {smallest['method']}, needs "
             f"{f['total_bytes'] / 2**30:.2f} GiB, usable is {f['usable_bytes'] / 2**30:.2f} GiB)"]
    if ctx:
        hints.append(f"a shorter context: {smallest['method']} fits at hardware.context_length={ctx}")
    if tiers:
        hints.append(f"a bigger tier: {', '.join(tiers)}")
    return f"method=auto: no candidate fits {cfg.hardware.name}. What would: " + "; ".join(hints)
