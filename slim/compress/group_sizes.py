"""Group size per layer: the largest of ``[group_size, *fallbacks]`` that divides a Linear's
input width (compressed-tensors refuses anything else), else keep it 16-bit or refuse, by
policy; and the compact form of that choice for a recipe and for the report."""
from __future__ import annotations

import re

from slim.errors import SlimError

POLICIES = ("fallback", "ignore", "error")


def linear_layers(model, targets, ignore) -> list[tuple[str, object]]:
    import torch
    from compressed_tensors.utils import match_named_modules
    return [(n, m) for n, m in match_named_modules(model, list(targets), list(ignore))
            if isinstance(m, torch.nn.Linear)]


def choose_group_sizes(layers, group_size: int, fallbacks, policy: str):
    """Per layer: the group size used, or why the layer stays unquantized.

    Returns ``(chosen {name: size}, ignored {name: reason})``; raises for ``policy=error``.
    """
    sizes = [group_size] + [g for g in (fallbacks or []) if g < group_size]
    chosen, ignored, bad = {}, {}, []
    for name, mod in layers:
        cols = int(mod.in_features)
        if cols % group_size == 0:
            chosen[name] = group_size
            continue
        bad.append(f"{name} (in_features {cols})")
        if policy == "error":
            continue
        fit = next((g for g in sizes if cols % g == 0), None) if policy == "fallback" else None
        if fit is not None:
            chosen[name] = fit
        else:
            why = (f"in_features {cols} not divisible by group size {group_size}"
                   + (f" or any fallback ({', '.join(map(str, sizes[1:]))})"
                      if policy == "fallback" and sizes[1:] else "")
                   + "; kept 16-bit")
            ignored[name] = why
    if policy == "error" and bad:
        raise SlimError(f"group size {group_size} does not divide the input width of "
                        f"{len(bad)} layer(s): {', '.join(bad[:6])}"
                        f"{' ...' if len(bad) > 6 else ''}; set indivisible=fallback (use "
                        f"{'/'.join(map(str, sizes[1:])) or 'smaller groups'}) or "
                        f"indivisible=ignore (keep them 16-bit)", "group_size_indivisible")
    return chosen, ignored


def layer_template(name: str) -> str:
    """``model.layers.3.mlp.down_proj`` -> ``model.layers.*.mlp.down_proj`` (for the report)."""
    return re.sub(r"(?<=\.)\d+(?=\.)", "*", name)


def compact_targets(chosen: dict[str, int]) -> dict[int, list[str]]:
    """Group size -> targets: one anchored regex per layer template when every layer of the
    template has the same size, else the exact names (anchored regexes)."""
    by_tpl: dict[str, dict[str, int]] = {}
    for n, g in chosen.items():
        by_tpl.setdefault(layer_template(n), {})[n] = g
    out: dict[int, list[str]] = {}
    for tpl, members in sorted(by_tpl.items()):
        sizes = set(members.values())
        if len(sizes) == 1:
            rx = "re:^" + re.escape(tpl).replace(r"\*", r"\d+") + "$"
            out.setdefault(sizes.pop(), []).append(rx)
        else:
            for n, g in sorted(members.items()):
                out.setdefault(g, []).append("re:^" + re.escape(n) + "$")
    return out


def group_report(chosen: dict[str, int]) -> dict[str, object]:
    """Template -> group size (or {layer: size} when layers of a template differ)."""
    by_tpl: dict[str, dict[str, int]] = {}
    for n, g in chosen.items():
        by_tpl.setdefault(layer_template(n), {})[n] = g
    return {tpl: (next(iter(set(m.values()))) if len(set(m.values())) == 1 else dict(sorted(m.items())))
            for tpl, m in sorted(by_tpl.items())}
