"""Quantization error of each GGUF tensor under each candidate ggml type, measured with
llama.cpp's own kernels on the real weights.

For a tensor W (rows × cols, cols = the row length ggml blocks run along) and a type T:
``Ŵ = to_float_T(ggml_quantize_chunk(T, W, imatrix))`` — the very function
``llama_model_quantize`` calls for that tensor, with the importance matrix as its
``quant_weights`` — and the error is the imatrix-weighted squared error
``Σ_rows Σ_j imatrix_j · (w_ij − ŵ_ij)²`` (``imatrix_j`` = mean of x_j² over calibration
tokens, so this is E‖(W − Ŵ)x‖² under a diagonal approximation of the input covariance).
It is reported beside the weighted signal ``Σ imatrix_j · w_ij²`` so that the relative error
(noise-to-signal ratio) compares tensors whose activations live on different scales, and beside
the unweighted error and signal (``error_plain``, ``signal_plain``): an importance matrix can be
dominated by one massive-activation channel (SmolLM2's blk.11.ffn_down: its weighted signal is
~1000× its neighbours'), and then the weighted ratio hides the error every ordinary token sees.

Why own code: llama-cpp-python binds libllama's API, not ggml's quantize functions, and
gguf-py's numpy quantizers cover only some types and take no importance matrix. So
``ggml_quantize_chunk`` and the type traits' ``to_float`` are called through ctypes on the
libggml-base that llama-cpp-python ships (the same library that quantizes the file).

A row length a type's block does not divide is not a candidate for that tensor (llama.cpp
would silently fall back to another type); neither is a type that requires an importance
matrix for a tensor that has none (``ggml_quantize_requires_imatrix``). Big tensors are
measured on an evenly spaced sample of rows (``max_rows``) and scaled to the whole.
"""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np

#: ggml types the allocator may choose (block size, bytes per block); ggml's type traits
#: (ggml/src/ggml.c) — the same table slim.hardware.estimate sizes files with
BLOCKS: dict[str, tuple[int, int]] = {
    "F16": (1, 2), "BF16": (1, 2),
    "Q8_0": (32, 34), "Q6_K": (256, 210), "Q5_K": (256, 176), "Q5_1": (32, 24),
    "Q5_0": (32, 22), "Q4_K": (256, 144), "Q4_1": (32, 20), "IQ4_XS": (256, 136),
    "IQ4_NL": (32, 18), "Q4_0": (32, 18), "Q3_K": (256, 110), "IQ3_S": (256, 110),
    "IQ3_XXS": (256, 98), "Q2_K": (256, 84), "IQ2_S": (256, 82), "IQ2_XS": (256, 74),
    "IQ2_XXS": (256, 66),
}
#: what method=fit considers by default: every type from 8.5 down to ~3 bits per weight
DEFAULT_CANDIDATES = ("Q8_0", "Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "IQ4_XS",
                      "IQ4_NL", "Q4_0", "Q3_K", "IQ3_S", "IQ3_XXS", "Q2_K")


class _Traits(ctypes.Structure):   # struct ggml_type_traits (ggml.h of the pinned llama.cpp)
    _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                ("from_float_ref", ctypes.c_void_p)]


_TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int64)


@functools.lru_cache(maxsize=1)
def _ggml():
    import llama_cpp   # loads libllama and, beside it, the libggml-base it links
    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    names = sorted(lib_dir.glob("libggml-base.*")) or sorted(lib_dir.glob("ggml-base.*"))
    if not names:
        from slim.errors import SlimError
        raise SlimError(f"no libggml-base in {lib_dir}: llama-cpp-python's ggml library is "
                        f"needed to measure quantization error", "toolchain_missing")
    lib = ctypes.CDLL(str(names[0]))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_float),
                                        ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.POINTER(ctypes.c_float)]
    lib.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
    lib.ggml_quantize_requires_imatrix.argtypes = [ctypes.c_int]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    lib.ggml_get_type_traits.restype = ctypes.POINTER(_Traits)
    lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
    return lib


def _type_id(name: str) -> int:
    import gguf
    return int(gguf.GGMLQuantizationType[name])


def requires_imatrix(name: str) -> bool:
    return bool(_ggml().ggml_quantize_requires_imatrix(_type_id(name)))


def legal(name: str, cols: int, has_imatrix: bool) -> bool:
    """Whether llama.cpp quantizes a row of ``cols`` as ``name`` itself (no fallback)."""
    return cols % BLOCKS[name][0] == 0 and (has_imatrix or not requires_imatrix(name))


def tensor_bytes(name: str, rows: int, cols: int) -> int:
    blk, size = BLOCKS[name]
    return rows * (cols // blk) * size


def roundtrip(w: np.ndarray, type_name: str, imatrix: np.ndarray | None = None) -> np.ndarray:
    """``w`` (rows × cols float32) quantized to ``type_name`` by ggml and dequantized back."""
    lib = _ggml()
    t = _type_id(type_name)
    w = np.ascontiguousarray(w, dtype=np.float32)
    rows, cols = w.shape
    row_size = lib.ggml_row_size(t, cols)
    buf = np.empty(rows * row_size, dtype=np.uint8)
    qw = None if imatrix is None else np.ascontiguousarray(imatrix, dtype=np.float32)
    fp = ctypes.POINTER(ctypes.c_float)
    n = lib.ggml_quantize_chunk(t, w.ctypes.data_as(fp), buf.ctypes.data_as(ctypes.c_void_p),
                                0, rows, cols, None if qw is None else qw.ctypes.data_as(fp))
    if n != rows * row_size:
        raise RuntimeError(f"ggml_quantize_chunk wrote {n} bytes for {type_name}, "
                           f"expected {rows * row_size}")
    out = np.empty((rows, cols), dtype=np.float32)
    to_float = _TO_FLOAT(lib.ggml_get_type_traits(t).contents.to_float)
    to_float(buf.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(fp), rows * cols)
    return out


def _sample(rows: int, max_rows: int | None) -> np.ndarray | None:
    if not max_rows or rows <= max_rows:
        return None
    return np.linspace(0, rows - 1, max_rows).round().astype(np.int64)


def quantizable(name: str, shape) -> bool:
    """The tensors llama.cpp quantizes (weights of ≥ 2 dims; not norms or MoE routers)."""
    return (name.endswith(".weight") and len(shape) >= 2 and "norm" not in name
            and "ffn_gate_inp" not in name and "position_embd" not in name)


def measure_tensor(w: np.ndarray, im: np.ndarray | None, types, max_rows: int | None = None,
                   n_expert: int = 1) -> dict:
    """Errors of one tensor (rows × cols float32; ``im``: (cols,) or (n_expert, cols), or None)
    under each legal type: ``{signal, rows, cols, sampled_rows, types: {T: {bytes, error}}}``."""
    rows, cols = w.shape
    idx = _sample(rows, max_rows)
    ws = w if idx is None else w[idx]
    if im is not None:
        im = np.asarray(im, dtype=np.float32).reshape(-1, cols)
        per_exp = rows // max(1, im.shape[0])
        row_im = im[(np.arange(rows) if idx is None else idx) // per_exp]
    else:
        row_im = np.ones((1, cols), dtype=np.float32)
    scale = rows / ws.shape[0]
    w2 = ws.astype(np.float64) ** 2
    signal = float(scale * np.sum(row_im * w2))
    out = {"rows": rows, "cols": cols, "sampled_rows": int(ws.shape[0]), "signal": signal,
           "signal_plain": float(scale * np.sum(w2)), "imatrix": im is not None, "types": {}}
    for t in types:
        if not legal(t, cols, im is not None):
            continue
        if im is None or im.shape[0] == 1:
            wh = roundtrip(ws, t, None if im is None else im[0])
        else:   # experts: each row block with its own importance vector (as llama.cpp does)
            wh = np.empty_like(ws, dtype=np.float32)
            src = np.arange(rows) if idx is None else idx
            for e in range(im.shape[0]):
                sel = np.nonzero(src // per_exp == e)[0]
                if sel.size:
                    wh[sel] = roundtrip(ws[sel], t, im[e])
        d2 = (ws.astype(np.float64) - wh) ** 2
        out["types"][t] = {"bytes": tensor_bytes(t, rows, cols),
                           "error": float(scale * np.sum(row_im * d2)),
                           "error_plain": float(scale * np.sum(d2))}
    return out


def read_f16_gguf(path):
    """(name, float32 rows × cols array, bytes in the file) of each quantizable tensor of a
    16-bit GGUF, as a generator (one tensor in memory at a time)."""
    import gguf
    r = gguf.GGUFReader(str(path))
    for t in r.tensors:
        shape = [int(x) for x in t.shape]   # ne order: shape[0] is the row length
        if not quantizable(t.name, shape):
            continue
        cols = shape[0]
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
        yield t.name, w.reshape(-1, cols), int(t.n_bytes)


def synthetic_nsr(types, rows: int = 256, cols: int = 4096, seed: int = 0) -> dict[str, float]:
    """Relative error ``Σ im (w − ŵ)² / Σ im w²`` of each type on seeded heavy-tailed weights
    (Student-t, ν = 5) with a log-normal importance vector: the weight-free prior for
    architectures measured nowhere. A real model's weights can differ (the default model's were
    distributed as Q4_1, so Q4_1/Q5_1 reproduce them almost exactly; that is not a prior)."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_t(5, size=(rows, cols)) * 0.02).astype(np.float32)
    im = rng.lognormal(0.0, 1.0, size=cols).astype(np.float32)
    m = measure_tensor(w, im, [t for t in types if t in BLOCKS])
    return {t: v["error"] / m["signal"] for t, v in m["types"].items()}


def default_candidates() -> list:
    """The types measured and allocated by default (a fresh list: dataclass default)."""
    return list(DEFAULT_CANDIDATES)


def candidate_errors(candidates) -> list[tuple[str, str]]:
    """Config errors of a ``candidates`` list: unknown types, or none at all."""
    errs = [("candidates", f"unknown or unsupported type {t!r}; known: {', '.join(BLOCKS)}")
            for t in candidates if t not in BLOCKS]
    if not candidates:
        errs.append(("candidates", "list at least one ggml type"))
    return errs
