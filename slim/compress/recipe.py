"""llm-compressor recipes as plain data (``[{ModifierClass: kwargs}]``, recorded in the
report) and the modifier objects built from them."""
from __future__ import annotations

from slim.compress.group_sizes import compact_targets


def _scheme_groups(p, chosen: dict[str, int]) -> dict:
    """llm-compressor ``config_groups`` for a group scheme with per-layer sizes (plain dicts)."""
    from compressed_tensors.quantization.quant_scheme import preset_name_to_scheme
    groups = {}
    for g, targets in sorted(compact_targets(chosen).items(), reverse=True):
        s = preset_name_to_scheme(p.scheme, targets)
        d = s.model_dump(mode="json", exclude_none=True)
        d["weights"]["group_size"] = g
        if p.algorithm == "gptq" or (p.algorithm == "smoothquant" and p.quantizer == "gptq"):
            if p.actorder is not None:
                d["weights"]["actorder"] = p.actorder
        d["targets"] = targets
        d.pop("format", None)
        d["weights"].pop("zp_dtype", None)
        d["weights"].pop("scale_dtype", None)
        groups[f"group_{g}"] = d
    return groups


def build_recipe(p, chosen: dict[str, int] | None, ignored: dict[str, str]) -> list[dict]:
    """The modifiers as ``[{ModifierClass: kwargs}]`` (plain data, recorded as the recipe);
    ``p`` is a :class:`slim.steps.llmc_oneshot.Params`."""
    ignore = list(p.ignore) + sorted(ignored)
    if p.quantizes:
        if chosen is not None:  # group scheme: per-layer sizes
            quant = {"config_groups": _scheme_groups(p, chosen), "ignore": ignore}
        else:
            quant = {"targets": list(p.targets), "scheme": p.scheme, "ignore": ignore}
        gptq = {**quant, "block_size": p.block_size, "dampening_frac": p.dampening_frac}
        if chosen is None and p.actorder is not None and p.effective_group_size:
            gptq["actorder"] = p.actorder
        if p.algorithm == "gptq":
            return [{"GPTQModifier": gptq}]
        if p.algorithm == "rtn":
            return [{"QuantizationModifier": quant}]
        if p.algorithm == "awq":
            return [{"AWQModifier": {"n_grid": p.n_grid, "duo_scaling": p.duo_scaling}},
                    {"QuantizationModifier": quant}]
        sq = {"SmoothQuantModifier": {"smoothing_strength": p.smoothing_strength}}
        return [sq, {"GPTQModifier": gptq} if p.quantizer == "gptq" else {"QuantizationModifier": quant}]
    prune = {"sparsity": float(p.sparsity), "mask_structure": p.mask_structure,
             "targets": list(p.targets), "ignore": ignore}
    if p.algorithm == "wanda":
        return [{"WandaPruningModifier": prune}]
    if p.algorithm == "sparsegpt":
        return [{"SparseGPTModifier": {**prune, "block_size": p.block_size,
                                       "dampening_frac": p.dampening_frac}}]
    return [{"MagnitudePruning (slim, torch)": {**prune, "comparison": "per layer"
                                                if p.mask_structure == "0:0" else "per group of M"}}]


def modifiers(recipe: list[dict]):
    from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
    from llmcompressor.modifiers.transform.awq import AWQModifier
    from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier
    classes = {c.__name__: c for c in (GPTQModifier, QuantizationModifier, AWQModifier,
                                       SmoothQuantModifier, WandaPruningModifier, SparseGPTModifier)}
    return [classes[name](**kwargs) for item in recipe for name, kwargs in item.items()]
