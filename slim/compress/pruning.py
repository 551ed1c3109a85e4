"""Pruning in torch: the magnitude baseline, measured sparsity, and what sparse storage
would save (compressed-tensors has no sparse writer any more)."""
from __future__ import annotations


def measure_sparsity(layers, mask_structure: str = "0:0") -> dict:
    import torch
    zeros = total = 0
    per = []
    n, m = (int(x) for x in str(mask_structure or "0:0").split(":"))
    follows = True
    with torch.no_grad():
        for name, mod in layers:
            w = mod.weight.detach()
            z = int((w == 0).sum())
            zeros += z
            total += w.numel()
            per.append(z / max(1, w.numel()))
            if n and m and w.shape[-1] % m == 0:
                follows &= bool(((w.reshape(-1, m) == 0).sum(-1) >= n).all())
    out = {"linear_weights": round(zeros / max(1, total), 6), "layers": len(per),
           "min_layer": round(min(per), 6) if per else None,
           "max_layer": round(max(per), 6) if per else None,
           "scope": "weights of the targeted Linear layers (embeddings, norms, lm_head excluded)"}
    if n and m:
        out["mask_structure"] = f"{n}:{m}"
        out["follows_mask"] = follows
    return out


def magnitude_prune(layers, sparsity: float, mask_structure: str) -> None:
    """Zero the smallest |w| per layer (unstructured) or N smallest per M inputs (N:M)."""
    import torch
    n, m = (int(x) for x in mask_structure.split(":"))
    with torch.no_grad():
        for _, mod in layers:
            w = mod.weight
            # ranks from a float32 copy of this one layer: the same ties broken the same way as
            # on a float32-loaded model, with the weights themselves kept 16-bit
            a = w.detach().to(torch.float32).abs()
            if n and m:
                idx = a.reshape(-1, m).argsort(dim=-1)[:, :n]
                w.reshape(-1, m).scatter_(1, idx, 0.0)
            else:
                k = int(round(w.numel() * sparsity))
                if k:
                    idx = torch.topk(a.flatten(), k, largest=False).indices
                    w.view(-1)[idx] = 0.0


def sparse_storage(layers, folder_bytes_dense: int, dtype_bytes: int) -> dict:
    """Dense (measured) vs bitmask-compressed (computed) size of a pruned model."""
    saved = 0
    with_mask = 0
    for _, mod in layers:
        w = mod.weight
        numel = w.numel()
        nnz = int((w != 0).sum())
        dense = numel * dtype_bytes
        bitmask = nnz * dtype_bytes + (numel + 7) // 8 + 4 * w.shape[0]  # values + mask + row offsets
        saved += dense - bitmask
        with_mask += bitmask
    try:
        from compressed_tensors.compressors import BaseCompressor
        BaseCompressor.get_value_from_registry("sparse-bitmask")
        writer = True
    except Exception:  # noqa: BLE001 - no such compressor registered
        writer = False
    import compressed_tensors
    return {"chosen": "dense", "dense_bytes": folder_bytes_dense,
            "bitmask_bytes_estimate": folder_bytes_dense - saved,
            "pruned_tensors_bitmask_bytes": with_mask,
            "reason": ("bitmask storage would be smaller, but compressed-tensors "
                       f"{compressed_tensors.__version__} has no sparse compressor (sparse-bitmask "
                       "is a legacy format it neither writes nor loads; transformers could not "
                       "load the result)" if not writer and saved > 0 else
                       "dense is smaller" if saved <= 0 else
                       "sparse compression is not wired up in this slim version")}
