"""llama.cpp runtime over llama-cpp-python 0.3.x (in process; every layer on the GPU when the
installed build has a GPU backend, see :func:`gpu_layers`, else the CPU).

The model is opened with ``logits_all=True`` so one ``eval`` over a window fills
``Llama.scores`` with the logits of every position (that is what ``logprobs``
reads). Greedy generation and the speed test switch the per-batch
"all logits" flag off, as a deployed llama.cpp does, and read only the last
row with ``llama_get_logits_ith``. Every ``logprobs``/``chat``/``generate`` call
starts from an empty KV cache, so results never depend on what ran before (only
``logits(..., reuse_prefix=True)``, used by the lm-eval model, keeps a shared prefix).
``generate_batch`` decodes many prompts at once in a second, multi-sequence
context (:mod:`slim.runtimes.llamacpp_batch`), freed when it returns.
"""
from __future__ import annotations

import atexit
import time
import weakref
from pathlib import Path
from typing import Sequence

import numpy as np

from slim.errors import SlimError
from slim.runtimes.base import Runtime, token_limits, cut_at_stop, default_threads, log_softmax


_OPEN: "weakref.WeakSet[LlamaCppRuntime]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:  # llama.cpp frees badly from __del__ during interpreter shutdown
    for rt in list(_OPEN):
        rt.close()


def gpu_layers() -> int:
    """Layers to offload: all (-1) when the installed llama-cpp-python was built with a GPU
    backend (CUDA, Metal, ...; ``make setup-cuda``), none with the CPU-only PyPI build.
    ``SLIM_LLAMA_GPU=off`` keeps llama.cpp on the CPU."""
    import os

    import llama_cpp
    if os.environ.get("SLIM_LLAMA_GPU", "on").lower() in ("off", "0", "false", "no"):
        return 0
    try:
        return -1 if llama_cpp.llama_supports_gpu_offload() else 0
    except AttributeError:
        return 0


def check_gguf_file(path: str | Path) -> Path:
    """The path of a readable GGUF file, or SlimError naming the file."""
    p = Path(path)
    if not p.exists():
        raise SlimError(f"GGUF file {p} does not exist", "model_missing")
    if not p.is_file():
        raise SlimError(f"{p} is not a file (expected a .gguf model file)", "model_missing")
    try:
        with open(p, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise SlimError(f"cannot read GGUF file {p}: {e.strerror}", "model_missing") from None
    if magic != b"GGUF":
        raise SlimError(f"{p} is not a GGUF file (bad magic {magic!r}); the file is corrupt "
                        f"or of another format", "corrupt_gguf")
    return p


class LlamaCppRuntime(Runtime):
    name = "llama.cpp"

    def __init__(self, path: str | Path, n_ctx: int = 2048, threads: int | None = None,
                 seed: int = 0, n_batch: int = 512, **llama_kwargs):
        import llama_cpp

        self.path = check_gguf_file(path)
        self.n_ctx = int(n_ctx)
        self.threads = default_threads(threads)
        self.seed = int(seed)
        self._lib = llama_cpp
        llama_kwargs.setdefault("n_gpu_layers", gpu_layers())
        self.gpu_layers = int(llama_kwargs["n_gpu_layers"])
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(self.path), n_ctx=self.n_ctx, n_batch=min(n_batch, self.n_ctx),
                n_threads=self.threads, n_threads_batch=self.threads, logits_all=True,
                seed=self.seed, verbose=False, **llama_kwargs)
        except (ValueError, RuntimeError, OSError) as e:
            raise SlimError(f"llama.cpp cannot load {self.path}: {e} (truncated or corrupt "
                            f"GGUF, or an architecture this llama.cpp build does not know)",
                            "corrupt_gguf") from None
        from slim.steps.base import note_device
        note_device("llama.cpp GPU offload" if self.gpu_layers else "llama.cpp cpu")
        self._n_vocab = int(self._llm.n_vocab())
        self._eog: frozenset[int] | None = None
        self._formatters: dict[bool, object] = {}
        self._scores_valid = False  # scores rows match input_ids[:n_tokens]
        _OPEN.add(self)

    # -- metadata ------------------------------------------------------------
    @property
    def llama(self):
        """The underlying ``llama_cpp.Llama`` (for callers that need more)."""
        return self._llm

    @property
    def metadata(self) -> dict:
        return dict(self._llm.metadata)

    @property
    def vocab_size(self) -> int:
        return self._n_vocab

    def _token_text(self, tid: int) -> str:
        if tid is None or tid < 0:
            return ""
        return self._llm._model.token_get_text(tid)

    @property
    def bos_id(self) -> int | None:
        t = int(self._llm.token_bos())
        return None if t < 0 else t

    @property
    def eos_id(self) -> int | None:
        t = int(self._llm.token_eos())
        return None if t < 0 else t

    @property
    def bos_text(self) -> str:
        return self._token_text(self.bos_id) if self.bos_id is not None else ""

    @property
    def eos_text(self) -> str:
        return self._token_text(self.eos_id) if self.eos_id is not None else ""

    @property
    def eog_ids(self) -> frozenset[int]:
        if self._eog is None:
            vocab = self._llm._model.vocab
            is_eog = self._lib.llama_vocab_is_eog
            self._eog = frozenset(i for i in range(self._n_vocab) if is_eog(vocab, i))
        return self._eog

    @property
    def chat_template(self) -> str | None:
        return self._llm.metadata.get("tokenizer.chat_template")

    # -- tokens --------------------------------------------------------------
    def tokenize(self, text: str, add_bos: bool) -> list[int]:
        if not text:
            bos = self.bos_id
            add = add_bos and bos is not None and self._llm.metadata.get(
                "tokenizer.ggml.add_bos_token", "true") == "true"
            return [bos] if add else []
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    def detokenize(self, tokens: Sequence[int]) -> str:
        if not len(tokens):
            return ""
        raw = self._llm.detokenize([int(t) for t in tokens], special=False)
        return raw.decode("utf-8", errors="replace")

    # -- scoring -------------------------------------------------------------
    def logits(self, tokens: Sequence[int], reuse_prefix: bool = False) -> np.ndarray:
        """Raw float32 logits ``[len(tokens), vocab]`` (a view, valid until the next call).

        ``reuse_prefix=True`` keeps the KV cache and logits of the longest prefix
        shared with the previous scoring call and evaluates only the rest (lm-eval's
        multiple-choice requests share their context). The numbers then match a
        fresh evaluation only up to float rounding, so ``logprobs`` never reuses.
        """
        toks = self._check_window(tokens)
        llm = self._llm
        llm._logits_all = True
        keep = 0
        if reuse_prefix and self._scores_valid and not (llm._is_recurrent or llm._is_hybrid):
            prev = llm.input_ids[: llm.n_tokens]
            n = min(len(prev), len(toks) - 1)  # evaluate at least the last token
            if n > 0:
                diff = np.nonzero(prev[:n] != np.asarray(toks[:n], dtype=prev.dtype))[0]
                keep = int(diff[0]) if len(diff) else n
        if keep == 0:
            llm.reset()
        else:
            llm.n_tokens = keep
        self._scores_valid = False
        llm.eval(toks[keep:])
        self._scores_valid = True
        return llm.scores[: len(toks)]

    def logprobs(self, tokens: Sequence[int]) -> np.ndarray:
        return log_softmax(self.logits(tokens))

    def logits_rows(self, tokens: Sequence[int], start: int, stop: int) -> np.ndarray:
        """Raw float32 logits of rows ``[start, stop)`` of one fresh evaluation of ``tokens`` (a copy).

        Only those rows are requested from llama.cpp, so the LM head runs for them alone
        and no ``[n_tokens, vocab]`` score array is filled (llama-perplexity computes only
        the scored half of each window the same way). Windows longer than ``n_batch``
        fall back to :meth:`logits`.
        """
        toks = self._check_window(tokens)
        if not 0 <= start < stop <= len(toks):
            raise ValueError(f"rows [{start}, {stop}) are outside a window of {len(toks)} tokens")
        llm = self._llm
        if len(toks) > llm.n_batch:
            return np.array(self.logits(toks)[start:stop], dtype=np.float32)
        self._scores_valid = False
        llm.reset()
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        b = llm._batch.batch
        b.n_tokens = len(toks)
        for i, t in enumerate(toks):   # filling the C batch struct; the math is in llama.cpp
            b.token[i], b.pos[i], b.n_seq_id[i] = t, i, 1
            b.seq_id[i][0] = 0
            b.logits[i] = start <= i < stop
        llm._ctx.decode(llm._batch)
        ptr = self._lib.llama_get_logits(llm.ctx)
        return np.ctypeslib.as_array(ptr, shape=(stop - start, self._n_vocab)).copy()

    # -- generation ----------------------------------------------------------
    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.chat_template
        if not template:
            raise SlimError(f"{self.path} has no chat template (GGUF metadata "
                            f"tokenizer.chat_template); it cannot run chat probes",
                            "no_chat_template")
        fmt = self._formatters.get(add_generation_prompt)
        if fmt is None:
            fmt = Jinja2ChatFormatter(template=template, eos_token=self.eos_text,
                                      bos_token=self.bos_text,
                                      add_generation_prompt=add_generation_prompt)
            self._formatters[add_generation_prompt] = fmt
        return fmt(messages=list(messages)).prompt

    def _last_logits(self) -> np.ndarray:
        ptr = self._lib.llama_get_logits_ith(self._llm.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))

    def _start(self, prompt: Sequence[int]) -> None:
        """Evaluate ``prompt`` from an empty cache, computing logits for the last token only."""
        llm = self._llm
        self._scores_valid = False
        llm.reset()
        llm._logits_all = False
        llm.eval([int(t) for t in prompt])

    def decode_logprobs(self, prompt: Sequence[int], tokens: Sequence[int]) -> np.ndarray:
        try:
            self._start(prompt)
            for t in tokens:
                self._llm.eval([int(t)])
            x = self._last_logits().astype(np.float64)
        finally:
            self._llm._logits_all = True
        return x - np.logaddexp.reduce(x)

    def generate(self, prompt_tokens: Sequence[int], max_tokens: int,
                 stop: Sequence[str] = (), ignore_eos: bool = False) -> list[int]:
        prompt_tokens = self._check_prompt(prompt_tokens)
        eog = frozenset() if ignore_eos else self.eog_ids
        out: list[int] = []
        try:
            self._start(prompt_tokens)
            while len(out) < max_tokens:
                t = int(np.argmax(self._last_logits()))
                if t in eog:
                    break
                out.append(t)
                if stop and cut_at_stop(self.detokenize(out), stop)[1]:
                    break
                if len(out) >= max_tokens or self._llm.n_tokens >= self.n_ctx:
                    break
                self._llm.eval([t])
        finally:
            self._llm._logits_all = True
        return out

    def generate_batch(self, prompts: Sequence[Sequence[int]], max_tokens: int | Sequence[int],
                       stop: Sequence[str] = (), ignore_eos: bool = False, batch_size: int = 16,
                       on_done=None, workers: int | None = None) -> list[list[int]]:
        """Several sequences per ``llama_decode`` (:mod:`slim.runtimes.llamacpp_batch`).

        Stops exactly as :meth:`generate` does, including its end at a full context
        (``n_ctx - len(prompt) + 1`` tokens), so the two differ only by float rounding.
        ``workers``: contexts decoding side by side (None: :func:`plan_workers`).
        """
        import threading

        from slim.runtimes.llamacpp_batch import (KV_BUDGET, BatchDecoder, plan_slots,
                                                  plan_workers, worker_items)

        prompts = [self._check_prompt(p) for p in prompts]
        limits = token_limits(prompts, max_tokens)
        if not prompts:
            return []
        limits = [min(n, self.n_ctx - len(p) + 1) for p, n in zip(prompts, limits)]
        if batch_size <= 1:
            return super().generate_batch(prompts, limits, stop, ignore_eos, 1, on_done)
        if workers is None:
            workers = plan_workers(self._llm, prompts, limits, batch_size, self.threads,
                                   on_gpu=self.gpu_layers != 0)
        eog = frozenset() if ignore_eos else self.eog_ids
        # each context decodes its share of the prompts on its share of the threads; several
        # run in Python threads of their own (llama_decode runs without the GIL)
        parts = [p for p in worker_items(len(prompts), batch_size, max(1, workers)) if p]
        n = len(parts)
        threads = [max(1, self.threads // n + (w < self.threads % n)) for w in range(n)]
        lock = threading.Lock()
        results: list = [None] * len(prompts)
        errors: list[BaseException] = []
        decoders: list[BatchDecoder] = []

        def work(dec, idx):
            def done(j):
                if on_done:
                    with lock:
                        on_done(idx[j])
            try:
                out = dec.run([prompts[i] for i in idx], [limits[i] for i in idx], eog, stop,
                              self.detokenize, done)
                for i, o in zip(idx, out):
                    results[i] = o
            except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread
                errors.append(e)
                for d in decoders:
                    d.cancelled = True

        try:
            for idx, t in zip(parts, threads):
                decoders.append(BatchDecoder(
                    self._llm, *plan_slots(self._llm, [prompts[i] for i in idx],
                                           [limits[i] for i in idx], batch_size,
                                           kv_budget=KV_BUDGET // n), n_threads=t))
            if n == 1:
                work(decoders[0], parts[0])
            else:
                pool = [threading.Thread(target=work, args=(d, idx), daemon=True)
                        for d, idx in zip(decoders, parts)]
                for th in pool:
                    th.start()
                try:
                    for th in pool:
                        th.join()
                except BaseException:  # Ctrl-C: stop the others after their current decode
                    for d in decoders:
                        d.cancelled = True
                    for th in pool:
                        th.join()
                    raise
            if errors:
                raise errors[0]
            return results
        finally:
            # prompt tokens evaluated / taken from copied streams, and the contexts used
            self.last_batch_stats = {
                k: sum(d.stats[k] for d in decoders) for k in ("prompt_tokens", "reused_tokens")}
            self.last_batch_stats["workers"] = len(decoders)
            for d in decoders:
                d.close()

    # -- speed ---------------------------------------------------------------
    def _time_prompt(self, tokens: list[int]) -> float:
        try:
            t0 = time.perf_counter()
            self._start(tokens)
            return time.perf_counter() - t0
        finally:
            self._llm._logits_all = True

    def _time_generation(self, tokens: list[int], n: int) -> float:
        try:
            self._start(tokens)
            t0 = time.perf_counter()
            for _ in range(n):
                t = int(np.argmax(self._last_logits()))
                self._llm.eval([t])
            return time.perf_counter() - t0
        finally:
            self._llm._logits_all = True

    def close(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.close()
