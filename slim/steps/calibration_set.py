"""Calibration token windows from a shipped text corpus, local text files or a local dataset.

The output (``tokens.npy`` [n_samples, seq_len]) and its digest feed every
downstream key, so editing a corpus file rebuilds exactly what depends on it.
Documents are split on ``<|doc|>`` lines and joined with the EOS token; windows
are drawn without overlap at seeded positions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

VERSION = 1
LIBS = ("transformers", "tokenizers", "numpy", "datasets")

DOC_SEP = "<|doc|>"


@dataclass
class Params:
    source: str = "corpus"
    dataset: Optional[str] = None
    text_field: str = "text"
    n_samples: int = 128
    seq_len: int = 512
    seed: int = 0

    def validate(self):
        errs = []
        if self.source not in ("corpus", "dataset"):
            errs.append(("source", "must be 'corpus' (text files) or 'dataset' (local datasets file/dir)"))
        if not isinstance(self.n_samples, int) or self.n_samples < 1:
            errs.append(("n_samples", f"must be a positive integer (got {self.n_samples})"))
        if not isinstance(self.seq_len, int) or not 16 <= self.seq_len <= 32768:
            errs.append(("seq_len", f"must be an integer in [16, 32768] (got {self.seq_len})"))
        return errs


def read_documents(inputs: dict, p: Params) -> list[tuple[str, str]]:
    from pathlib import Path

    from slim.errors import SlimError
    docs = []
    if p.source == "corpus":
        for name in sorted(k for k in inputs if k.startswith("text")):
            path = Path(inputs[name])
            for i, d in enumerate(path.read_text(encoding="utf-8").split(f"\n{DOC_SEP}\n")):
                d = d.strip().removeprefix(DOC_SEP).strip()
                if d:
                    docs.append((f"{path.name}#{i}", d))
    else:
        import datasets
        src = Path(inputs["dataset"])
        try:
            if src.is_dir():
                ds = datasets.load_from_disk(str(src))
            else:
                fmt = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet",
                       ".txt": "text"}.get(src.suffix)
                if fmt is None:
                    raise SlimError(f"calibration.dataset {src}: unsupported file type {src.suffix}")
                ds = datasets.load_dataset(fmt, data_files=str(src), split="train")
        except SlimError:
            raise
        except Exception as e:
            raise SlimError(f"calibration.dataset {src}: cannot load ({str(e).splitlines()[0]})",
                            "calibration_failed") from None
        if hasattr(ds, "keys") and not hasattr(ds, "column_names"):
            ds = ds[list(ds.keys())[0]]
        if p.text_field not in ds.column_names:
            raise SlimError(f"calibration.text_field {p.text_field!r} not in dataset columns "
                            f"{ds.column_names}", "calibration_failed")
        docs = [(f"{src.name}#{i}", t) for i, t in enumerate(ds[p.text_field]) if t and t.strip()]
    if not docs:
        raise SlimError("calibration data is empty", "calibration_failed")
    return docs



def memory(params, model: dict) -> dict:
    from slim.steps.base import LIGHT_BASE
    return {"ram": LIGHT_BASE + 4 * params.n_samples * params.seq_len * 8,
            "why": "the tokenizer and the token ids"}


def run(ctx):
    import numpy as np
    from transformers import AutoTokenizer

    from slim.errors import SlimError

    p = ctx.params
    tok = AutoTokenizer.from_pretrained(str(ctx.inputs["parent"]))
    tok.model_max_length = 1 << 30  # documents are cut into windows below
    docs = read_documents(ctx.inputs, p)
    sep = tok.eos_token_id if tok.eos_token_id is not None else 0
    stream: list[int] = []
    for _, d in docs:
        stream += tok(d, add_special_tokens=False)["input_ids"] + [sep]
    n_windows = len(stream) // p.seq_len
    if n_windows < p.n_samples:
        raise SlimError(
            f"calibration.n_samples={p.n_samples} × seq_len={p.seq_len} needs "
            f"{p.n_samples * p.seq_len} tokens but the calibration data has {len(stream)} "
            f"({n_windows} windows); lower n_samples/seq_len or add text", "calibration_too_small")
    rng = np.random.default_rng(p.seed)
    picks = np.sort(rng.choice(n_windows, size=p.n_samples, replace=False))
    arr = np.asarray(stream[: n_windows * p.seq_len], dtype=np.int32).reshape(n_windows, p.seq_len)
    np.save(ctx.out / "tokens.npy", arr[picks])
    ctx.write_json("calibration.json", {
        "documents": len(docs), "tokens_available": len(stream), "windows_available": n_windows,
        "n_samples": p.n_samples, "seq_len": p.seq_len, "seed": p.seed,
        "tokens_used": int(p.n_samples * p.seq_len), "source": p.source,
        "files": sorted({d[0].split('#')[0] for d in docs})})
