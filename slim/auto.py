"""method=auto: choose the build for the tier on the precise evidence.

1. candidates the tier runs natively (capability data, no tier names in code);
2. estimated size + KV cache + overhead must fit usable memory with headroom;
3. build and probe the fitting candidates (they share the cache); one that fails to build
   is recorded with its error and the others go on;
4. winner (:func:`choose`): a candidate with a failed gate is out; accepted candidates first,
   inconclusive (or ungated) ones only when no accepted one fits; among them the lowest mean
   KLD, then PPL ratio, never a lower-bit preset of a family over a higher-bit one of the same
   family in the same tier (a KLD difference inside the noise must not trade bits away).
The winner is re-published (fully cached) as ``<model>-auto-<hardware>`` with an ``auto``
section listing every candidate, its size, fit, status and why it won or lost.
"""
from __future__ import annotations

import json
import math
import sys

from omegaconf import OmegaConf, open_dict

from slim import build
from slim.config import catalog
from slim.config.schema import MethodConfig
from slim.config.validate import all_methods, estimate_only, validate
from slim.errors import SlimError
from slim.naming import default_build_name
from slim.planview import candidate_rows, nothing_fits
from slim.report.gates import failed_gates, undecided_gates
from slim.report.headline import headline_retention
from slim.units import fmt_bytes

RULE = ("drop candidates that do not fit or failed a gate; accepted before inconclusive/ungated "
        "(those only when no accepted candidate fits); lowest mean KLD, then PPL ratio; within "
        "a method family the higher-bit preset over a lower-bit one of the same status")
TIERS = (("accepted",), ("inconclusive", "ungated"))


def member_cfg(cfg, name: str):
    """The same target with method=<name>, typed by the MethodConfig schema."""
    m = cfg.copy()
    with open_dict(m):
        m.method = OmegaConf.merge(OmegaConf.structured(MethodConfig), catalog.load("method", name))
        m.build_name = None
    return m


def _num(v) -> float:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v) \
        else math.inf


def choose(rows: list[dict]) -> tuple[dict | None, str]:
    """(winner, why) among built candidate rows ``{method, family, status, fits, bytes,
    kld_mean, ppl_ratio}``; (None, why) when none qualifies."""
    fitting = [r for r in rows if r.get("fits") and r.get("status") not in (None, "build failed")]
    for tier in TIERS:
        pool = [r for r in fitting if r["status"] in tier]
        if not pool:
            continue
        best = min(pool, key=lambda r: (_num(r.get("kld_mean")), _num(r.get("ppl_ratio")),
                                        -(r.get("bytes") or 0)))
        why = (f"{best['method']} has the lowest mean KLD ({_fmt(best.get('kld_mean'))}, PPL ratio "
               f"{_fmt(best.get('ppl_ratio'))}) of the {len(pool)} {'/'.join(tier)} candidate(s) "
               f"that fit")
        bigger = [r for r in pool if r.get("family") == best.get("family")
                  and (r.get("bytes") or 0) > (best.get("bytes") or 0)]
        if bigger:
            top = max(bigger, key=lambda r: r.get("bytes") or 0)
            why = (f"{top['method']} is the highest-bit {top.get('family')} preset that fits with "
                   f"status {top['status']}: preferred over {best['method']} (KLD "
                   f"{_fmt(best.get('kld_mean'))} vs {_fmt(top.get('kld_mean'))}), a lower-bit "
                   f"preset of the same family")
            best = top
        if tier != TIERS[0]:
            why += (f"; NO accepted candidate fits, so this {best['status']} build wins: its gates "
                    f"did not prove its quality")
        return best, why
    return None, "no candidate that fits was accepted or inconclusive"


def _fmt(v) -> str:
    return "–" if _num(v) == math.inf else f"{v:.4g}"


def run_auto(cfg):
    """method=auto: estimate, build the fitting candidates, publish the winner. Any other
    method, ``plan=true`` and weightless models go straight to :func:`slim.build.run_build`."""
    if cfg.method.family != "auto" or cfg.plan or estimate_only(cfg):
        return build.run_build(cfg)
    validate(cfg)
    me = cfg.method
    methods = all_methods()
    est = {r["method"]: r for r in candidate_rows(cfg, list(me.candidates), me.headroom)}
    rows, fitting = [], []
    for name in me.candidates:
        e = est[name]
        row = {"method": name, "family": methods[name].get("family"),
               "estimated_bytes": e.get("bytes"), "status": None}
        if "error" in e:
            row["reason"] = e["error"]
        elif not e["runs_natively"]:
            row["reason"] = e["problems"][0]
        elif not e["fit"]["fits"]:
            f = e["fit"]
            row["reason"] = (f"does not fit with {me.headroom:.0%} headroom: needs "
                             f"{fmt_bytes(f['total_bytes'])} of {fmt_bytes(f['usable_bytes'])}")
        else:
            fitting.append(name)
            row["reason"] = "fits (estimate)"
        rows.append(row)
    if not fitting:
        raise SlimError(nothing_fits(cfg, est))
    to_build = fitting[: me.max_builds] if me.max_builds else fitting
    print(f"method=auto on {cfg.hardware.name}: building {', '.join(to_build)} "
          f"(skipped: {', '.join(r['method'] for r in rows if r['method'] not in fitting) or 'none'})",
          file=sys.stderr)
    for name in to_build:
        row = next(r for r in rows if r["method"] == name)
        try:
            out = build.run_build(member_cfg(cfg, name), quiet=True)
            rep = json.loads((out / "report.json").read_text())
        except Exception as e:  # one candidate's failure must not abort the others
            row.update({"status": "build failed", "reason": f"{type(e).__name__}: "
                                                            f"{str(e).splitlines()[0][:300]}"})
            print(f"  {name:10} build failed: {row['reason']}", file=sys.stderr)
            continue
        fid = (rep.get("metrics") or {}).get("fidelity") or {}
        row.update({"status": rep["status"], "bytes": rep["artifact"]["bytes"],
                    "bpw": rep["artifact"].get("bpw"), "fits": (rep.get("fit") or {}).get("fits"),
                    "retention": headline_retention(rep), "kld_mean": fid.get("kld_mean"),
                    "ppl_ratio": fid.get("ppl_ratio"), "failed_gates": failed_gates(rep),
                    "undecided_gates": undecided_gates(rep), "build": rep["build"],
                    "reason": "built and probed"})
        print(f"  {name:10} {fmt_bytes(row['bytes']):>10}  KLD {_fmt(row['kld_mean'])}  "
              f"PPL ratio {_fmt(row['ppl_ratio'])}  {row['status']}", file=sys.stderr)
    for r in rows:
        if r["method"] in fitting and r["method"] not in to_build:
            r["reason"] = f"not built (method.max_builds={me.max_builds})"
    winner, why = choose(rows)
    if winner is None:
        raise SlimError(f"method=auto: no candidate that fits {cfg.hardware.name} passed or was "
                        f"undecided by the gates of probes={cfg.probes.name}: " + "; ".join(
                            f"{r['method']}: {r.get('status') or 'not built'} "
                            f"({'; '.join(r.get('failed_gates') or []) or r.get('reason')})"
                            for r in rows))
    auto = {"auto": {"winner": winner["method"], "winner_status": winner["status"], "why": why,
                     "candidates": rows, "rule": RULE, "headroom": me.headroom}}
    final_cfg = member_cfg(cfg, winner["method"])
    with open_dict(final_cfg):
        final_cfg.build_name = cfg.build_name or default_build_name(cfg, "auto")
    return build.run_build(final_cfg, extra_report=auto)

