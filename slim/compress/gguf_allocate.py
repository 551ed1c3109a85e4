"""Choose one quantization type per tensor so that the total bytes fit a budget and the summed
cost (predicted quality loss) is least: a multiple-choice knapsack.

Pure math, no weights or files: each tensor offers options ``{type: (bytes, cost)}``. Options
that another option beats on both bytes and cost are dropped, then the problem is solved
exactly as a 0/1 integer program with scipy's HiGHS (``scipy.optimize.milp``: one binary per
tensor × type, one choice per tensor, one budget row) — a few thousand binaries for a 7B model,
solved in well under a second. The Lagrangian relaxation (each tensor on the lower convex hull
of its (bytes, cost) points, λ raised until the budget holds; llama.cpp PR #15550's approach)
is computed beside it as a bound: the exact solution's cost can be no higher than the greedy's,
and the report carries both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from slim.errors import SlimError


@dataclass
class Allocation:
    types: dict[str, str]          # tensor name -> chosen type
    bytes: int                     # tensor bytes of the choice (plus ``fixed``)
    cost: float
    budget: int
    greedy_cost: float             # Lagrangian / convex-hull greedy solution's cost (a check)
    greedy_bytes: int
    solver: str

    def as_dict(self) -> dict:
        return {"types": dict(self.types), "bytes": self.bytes, "cost": self.cost,
                "budget": self.budget, "greedy_cost": self.greedy_cost,
                "greedy_bytes": self.greedy_bytes, "solver": self.solver}


def pareto(options: dict[str, tuple[int, float]]) -> dict[str, tuple[int, float]]:
    """Options no other option beats on both bytes and cost (ties: the smaller, then by name)."""
    items = sorted(options.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[0]))
    out, best = {}, math.inf
    for name, (b, c) in items:
        if c < best:
            out[name] = (int(b), float(c))
            best = c
    return out


def _hull(opts: list[tuple[str, int, float]]) -> list[tuple[str, int, float]]:
    """Lower convex hull of Pareto points sorted by bytes (cost falling)."""
    h: list[tuple[str, int, float]] = []
    for p in opts:
        while len(h) >= 2:
            (_, b1, c1), (_, b2, c2) = h[-2], h[-1]
            # drop h[-1] if it lies on or above the segment h[-2] -> p
            if (c2 - c1) * (p[1] - b1) >= (p[2] - c1) * (b2 - b1):
                h.pop()
            else:
                break
        h.append(p)
    return h


def greedy(tensors: dict[str, dict[str, tuple[int, float]]], budget: int) -> dict[str, str]:
    """Lagrangian allocation: start every tensor at its smallest option, then take upgrades along
    each tensor's convex hull in order of cost saved per extra byte while they fit; finally any
    single hull step that still fits, best ratio first."""
    import heapq
    hulls = {n: _hull([(t, b, c) for t, (b, c) in sorted(pareto(o).items(),
                                                          key=lambda kv: kv[1][0])])
             for n, o in tensors.items()}
    pos = {n: 0 for n in hulls}
    used = sum(h[0][1] for h in hulls.values())
    heap = []

    def push(n):
        h, i = hulls[n], pos[n]
        if i + 1 < len(h):
            db, dc = h[i + 1][1] - h[i][1], h[i][2] - h[i + 1][2]
            heapq.heappush(heap, (-dc / db if db > 0 else -math.inf, n, i))

    for n in hulls:
        push(n)
    while heap:
        _, n, i = heapq.heappop(heap)
        if pos[n] != i:
            continue
        h = hulls[n]
        db = h[i + 1][1] - h[i][1]
        if used + db <= budget:
            used += db
            pos[n] = i + 1
            push(n)
    return {n: hulls[n][pos[n]][0] for n in hulls}


def _total(tensors, choice) -> tuple[int, float]:
    return (sum(tensors[n][t][0] for n, t in choice.items()),
            sum(tensors[n][t][1] for n, t in choice.items()))


def allocate(tensors: dict[str, dict[str, tuple[int, float]]], budget: int, fixed: int = 0,
             budget_key: str = "method.target_bytes") -> Allocation:
    """The least-cost choice of one option per tensor with Σ bytes + ``fixed`` ≤ ``budget``.

    ``tensors``: ``{name: {type: (bytes, cost)}}``; ``fixed``: bytes outside the choice (norms,
    metadata). Raises :class:`SlimError` naming ``budget_key`` when even the smallest option of
    every tensor does not fit.
    """
    if not tensors:
        raise SlimError("nothing to allocate: no quantizable tensors", "invalid_config")
    empty = [n for n, o in tensors.items() if not o]
    if empty:
        raise SlimError(f"no legal type for tensor(s) {', '.join(empty[:5])}", "invalid_config")
    front = {n: pareto(o) for n, o in tensors.items()}
    room = int(budget) - int(fixed)
    least = sum(min(b for b, _ in o.values()) for o in front.values())
    if least > room:
        raise SlimError(
            f"{budget_key}={int(budget)} is too small: the smallest type of every tensor needs "
            f"{least + int(fixed)} bytes ({least} in tensors + {int(fixed)} fixed: norms, metadata); "
            f"raise {budget_key} to at least that or allow smaller types", "invalid_config")
    g = greedy(front, room)
    gb, gc = _total(front, g)
    choice, solver = _milp(front, room, g)
    b, c = _total(front, choice)
    if c > gc + 1e-12 * max(1.0, abs(gc)) or b > room:   # never worse than the bound it beats
        choice, b, c, solver = g, gb, gc, "greedy (the integer program found no better)"
    return Allocation(choice, b + int(fixed), c, int(budget), gc, gb + int(fixed), solver)


def _milp(front, room: int, start: dict[str, str]) -> tuple[dict[str, str], str]:
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix
    names = sorted(front)
    var = [(n, t) for n in names for t in sorted(front[n])]
    if len(var) == len(names):          # one option each: nothing to choose
        return {n: next(iter(front[n])) for n in names}, "trivial"
    cost = np.array([front[n][t][1] for n, t in var])
    size = np.array([front[n][t][0] for n, t in var], dtype=float)
    # costs spanning many decades: scale so HiGHS' tolerances see comparable numbers
    scale = float(np.max(np.abs(cost))) or 1.0
    row = {n: i for i, n in enumerate(names)}
    one = coo_matrix((np.ones(len(var)), ([row[n] for n, _ in var], range(len(var)))),
                     shape=(len(names), len(var)))
    cons = [LinearConstraint(one, 1, 1), LinearConstraint(size[None, :], -np.inf, room)]
    res = milp(cost / scale, constraints=cons, integrality=np.ones(len(var)),
               bounds=Bounds(0, 1), options={"mip_rel_gap": 1e-9, "time_limit": 60.0})
    if res.x is None:
        return start, f"greedy (HiGHS: {res.message})"
    pick = {}
    for (n, t), x in zip(var, res.x):
        if x > 0.5:
            pick[n] = t
    if len(pick) != len(names):
        return start, "greedy (HiGHS returned no integral choice)"
    return pick, "milp (scipy HiGHS)" + ("" if res.status == 0 else f", {res.message}")
