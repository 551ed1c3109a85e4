"""Greedy decoding of many prompts at once in llama.cpp (continuous batching).

Why our own loop: llama-cpp-python's ``Llama`` drives one sequence (its context
has ``n_seq_max=1``) and offers no batched generation. llama.cpp's own
``examples/batched`` and ``examples/parallel`` show the pattern, done here
through the low-level bindings: one context with ``n_seq`` sequence slots, one
``llama_batch`` per step holding the next token of every live sequence (and the
whole prompt of each newly admitted one, logits on its last token only), argmax
over each sequence's logits row, and ``llama_memory_seq_rm`` to empty a slot
whose sequence ended so the next prompt takes it at once.

The KV cache is not unified (one stream per slot, ``kv_unified=False``, as
llama.h advises for sequences that share no prefix): each token attends over its
own sequence's cells only, as in one-at-a-time decoding, instead of over every
slot's cells under a mask. llama.cpp then splits a batch into micro-batches of
consecutive sequence ids, so tokens are added in slot order, and once the last
prompts are admitted, finished slots are filled by moving later sequences down.

Probe prompts share the chat template's opening (SmolLM2 adds the same system
prompt to every item without one: ~40% of the suite's prompt tokens). That
prefix is evaluated once into one more stream and copied into a slot
(``llama_memory_seq_cp``) before the rest of a prompt that starts with it, as
llama.cpp's server reuses cached prompts; the copy holds the same K/V values.
Items of one family often share more than that (the same system message, the
same instructions): a new prompt instead starts as a copy of the live slot whose
prompt shares the longest opening with it, cut back to that opening
(``llama_memory_seq_rm``). K/V at a position depend only on the tokens before
it, so the copy holds what evaluating those tokens again would give, up to float
rounding. On the default suite this evaluates 45.3k prompt tokens instead of
58.8k with the one shared prefix (91.3k without any).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from slim.errors import SlimError
from slim.runtimes.base import cut_at_stop

#: bytes of KV cache the batch context may allocate (F16 K and V); fewer slots beyond it
KV_BUDGET = 2 << 30
_PAD = 256  # llama.cpp pads each sequence's context to a multiple of 256 cells
#: a live slot's opening is copied when it saves at least this many more tokens than the shared
#: prefix (copying a stream moves all its cells: ~1 ms for 256 cells of the default model,
#: about what evaluating one token costs in a batch)
MIN_REUSE = 4


@dataclass
class _Slot:
    item: int            # index of the prompt this slot decodes
    limit: int           # tokens it may generate
    pos: int = 0         # position of the next token fed to the model
    row: int = -1        # row of its logits in the last batch (-1: none)
    out: list = field(default_factory=list)


def kv_bytes_per_cell(model) -> int:
    """Approximate F16 K+V bytes one token takes in the KV cache of ``model`` (a llama_model_p)."""
    import llama_cpp as L

    n_head = max(1, L.llama_model_n_head(model))
    head_dim = L.llama_model_n_embd(model) // n_head
    return 2 * 2 * L.llama_model_n_layer(model) * max(1, L.llama_model_n_head_kv(model)) * head_dim


class BatchDecoder:
    """A llama.cpp context with ``n_seq`` sequence slots of ``n_ctx_seq`` cells each."""

    def __init__(self, llm, n_seq: int, n_ctx_seq: int, n_batch: int, prefix: Sequence[int] = (),
                 n_threads: int | None = None):
        import llama_cpp as L
        from llama_cpp._internals import LlamaContext

        self._L = L
        self.prefix = [int(t) for t in prefix]
        streams = n_seq + (1 if self.prefix else 0)  # the prefix stream comes after the slots
        params = L.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_seq_max = streams
        params.n_ctx = streams * n_ctx_seq
        params.kv_unified = False
        params.n_batch = n_batch
        params.n_ubatch = min(n_batch, llm.context_params.n_ubatch or 512)
        if n_threads:
            params.n_threads = params.n_threads_batch = int(n_threads)
        try:
            self._ctx = LlamaContext(model=llm._model, params=params, verbose=False)
        except ValueError as e:
            raise SlimError(f"llama.cpp could not create a context of {n_seq} sequences × "
                            f"{n_ctx_seq} tokens for batched generation ({e}); use a smaller "
                            f"batch size", "batch_context_failed") from None
        self._batch = L.llama_batch_init(n_batch, 0, 1)
        self.n_seq, self.n_batch = n_seq, n_batch
        # stream copies move attention K/V; a recurrent state is not a K/V stream
        self.can_copy = not (getattr(llm, "_is_recurrent", False) or getattr(llm, "_is_hybrid", False))
        self.n_vocab = int(llm.n_vocab())
        #: prompt tokens evaluated, and those taken from a copied stream, in the last run
        self.stats = {"prompt_tokens": 0, "reused_tokens": 0}
        #: set from another thread to end :meth:`run` after the current decode
        self.cancelled = False

    def close(self) -> None:
        if self._batch is not None:
            self._L.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        b = self._batch
        for j, (tok, pos, seq, want) in enumerate(entries):
            b.token[j] = tok
            b.pos[j] = pos
            b.n_seq_id[j] = 1
            b.seq_id[j][0] = seq
            b.logits[j] = want
        b.n_tokens = len(entries)
        rc = self._L.llama_decode(self._ctx.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc} on a batch of "
                               f"{len(entries)} tokens")

    def _next_token(self, row: int) -> int:
        ptr = self._L.llama_get_logits_ith(self._ctx.ctx, row)
        return int(np.argmax(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))))

    def run(self, prompts: Sequence[list[int]], limits: Sequence[int], eog: frozenset[int],
            stop: Sequence[str] = (), detokenize: Callable[[list[int]], str] | None = None,
            on_done: Callable[[int], None] | None = None) -> list[list[int]]:
        """Greedy continuations, stopping as ``LlamaCppRuntime.generate`` does; in prompt order."""
        results: list[list[int] | None] = [None] * len(prompts)
        pending = deque()
        for i, n in enumerate(limits):
            if n <= 0:
                results[i] = []
                if on_done:
                    on_done(i)
            else:
                pending.append(i)
        slots: list[_Slot | None] = [None] * self.n_seq
        mem = self._ctx.memory
        k = len(self.prefix)
        if k:  # evaluate the shared prefix once, into the stream after the slots
            self._decode([(t, j, self.n_seq, j == k - 1) for j, t in enumerate(self.prefix)])
        shares = [bool(k) and len(p) > k and p[:k] == self.prefix for p in prompts]
        self.stats = {"prompt_tokens": k, "reused_tokens": 0}

        def source(i: int, fresh: set) -> tuple[int, int]:
            """``(tokens, stream)``: the longest evaluated opening of prompt ``i`` and the stream
            it is copied from (-1: none). Slots admitted in this step are not evaluated yet."""
            base = (k, self.n_seq) if shares[i] else (0, -1)
            if not self.can_copy:
                return base
            live = [(common_prefix(prompts[st2.item], prompts[i]), s2)
                    for s2, st2 in enumerate(slots) if st2 is not None and s2 not in fresh]
            best = max(live, default=(0, -1))
            return best if best[0] >= base[0] + MIN_REUSE else base

        def finish(s: int) -> None:
            st = slots[s]
            results[st.item] = st.out
            self._L.llama_memory_seq_rm(mem, s, -1, -1)
            slots[s] = None
            if on_done:
                on_done(st.item)

        while pending or any(slots):
            if self.cancelled:
                raise RuntimeError("batched generation cancelled")
            entries: list[tuple[int, int, int, bool]] = []
            room = self.n_batch - sum(1 for st in slots if st is not None)
            fresh: set[int] = set()
            for s in range(self.n_seq):  # slot order: llama.cpp wants consecutive seq ids
                st = slots[s]
                if st is None and pending and len(prompts[pending[0]]) <= room:
                    i = pending.popleft()
                    start, src = source(i, fresh)
                    st = slots[s] = _Slot(item=i, limit=limits[i])
                    fresh.add(s)
                    p = prompts[i]
                    if src >= 0:  # the slot starts as a copy of that stream's first tokens
                        # (between streams llama.cpp copies a whole stream: cut it back)
                        self._L.llama_memory_seq_cp(mem, src, s, -1, -1)
                        if src != self.n_seq:
                            self._L.llama_memory_seq_rm(mem, s, start, -1)
                    self.stats["prompt_tokens"] += len(p) - start
                    self.stats["reused_tokens"] += start
                    room -= len(p) - start
                    entries.extend((p[j], j, s, j == len(p) - 1) for j in range(start, len(p)))
                    st.pos, st.row = len(p), len(entries) - 1
                elif st is not None:
                    entries.append((st.out[-1], st.pos, s, True))
                    st.pos, st.row = st.pos + 1, len(entries) - 1
            self._decode(entries)
            for s, st in enumerate(slots):
                if st is None:
                    continue
                t = self._next_token(st.row)
                if t in eog:
                    finish(s)
                    continue
                st.out.append(t)
                if (len(st.out) >= st.limit
                        or (stop and cut_at_stop(detokenize(st.out), stop)[1])):
                    finish(s)
            if not pending and self.can_copy:
                self._compact(slots)
        return results  # type: ignore[return-value]

    def _compact(self, slots: list) -> None:
        """Move the last live sequences into the holes below them (an exact copy of their
        K/V stream): llama.cpp splits a batch at every gap in the sequence ids, and once
        no prompt is left to fill the holes each gap would cost one more micro-batch."""
        L, mem = self._L, self._ctx.memory
        while None in slots:
            hole = slots.index(None)
            last = max((i for i, st in enumerate(slots) if st is not None), default=-1)
            if last < hole:
                return
            L.llama_memory_seq_cp(mem, last, hole, -1, -1)
            L.llama_memory_seq_rm(mem, last, -1, -1)
            slots[hole], slots[last] = slots[last], None


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Tokens ``a`` and ``b`` share at the start, at most ``len(b) - 1`` (``b`` keeps a token to
    evaluate for its logits)."""
    n = min(len(a), len(b) - 1)
    return next((j for j in range(n) if a[j] != b[j]), max(n, 0))


def shared_prefix(prompts: Sequence[list[int]], min_len: int = 4) -> list[int]:
    """The prompt prefix whose one-time evaluation saves the most tokens (``[]`` if none pays).

    Candidates are the common prefixes of neighbouring prompts (items of one
    family sit together); a prompt uses the prefix only if it has a token after it.
    """
    cands = set()
    for a, b in zip(prompts, prompts[1:]):
        n = min(len(a), len(b)) - 1
        n = next((i for i in range(n) if a[i] != b[i]), n)
        if n >= min_len:
            cands.add(tuple(a[:n]))
    best, gain = [], 0
    for c in cands:
        c = list(c)
        users = sum(1 for p in prompts if len(p) > len(c) and p[:len(c)] == c)
        if (users - 1) * len(c) > gain:
            best, gain = c, (users - 1) * len(c)
    return best


def slot_cells(prompts: Sequence[list[int]], limits: Sequence[int]) -> int:
    """Cells one slot needs: the longest prompt plus its generation, padded as llama.cpp pads."""
    need = max(len(p) + max(n, 1) for p, n in zip(prompts, limits))
    return -(-need // _PAD) * _PAD


def plan_slots(llm, prompts: Sequence[list[int]], limits: Sequence[int], batch_size: int,
               n_ubatch: int = 512, kv_budget: int = KV_BUDGET) -> tuple[int, int, int, list[int]]:
    """``(n_seq, n_ctx_seq, n_batch, prefix)`` for decoding ``prompts``: at most ``batch_size``
    slots, each holding the longest prompt plus its generation, within ``kv_budget`` bytes."""
    n_ctx_seq = slot_cells(prompts, limits)
    recurrent = getattr(llm, "_is_recurrent", False) or getattr(llm, "_is_hybrid", False)
    prefix = [] if recurrent else shared_prefix(prompts)
    fit = kv_budget // max(1, n_ctx_seq * kv_bytes_per_cell(llm._model.model)) - bool(prefix)
    n_seq = max(1, min(batch_size, len(prompts), fit))
    n_batch = max(n_ubatch, max(len(p) for p in prompts) + n_seq)
    return n_seq, n_ctx_seq, n_batch, prefix


def plan_workers(llm, prompts: Sequence[list[int]], limits: Sequence[int], batch_size: int,
                 threads: int, on_gpu: bool) -> int:
    """How many contexts decode the prompts side by side, each on ``threads // workers`` threads.

    On a CPU, one context's threads meet at a barrier after every op of the graph
    (llama.cpp's CPU backend runs on OpenMP), and a small model's ops are too short
    for that to pay: on the default model (135M, F16, 32 slots) one context at 2
    threads answered the suite at 12.3 items/s, two contexts of one thread each at
    13.5 (docs/evaluation_speed.md). More contexts are used only where each keeps
    a full batch of slots within :data:`KV_BUDGET` (so a large model, whose batch
    needs the whole budget and whose ops are long, keeps one context and all
    threads), each has at least a batch of prompts, and never on a GPU.
    """
    if on_gpu or threads < 2 or batch_size < 2:
        return 1
    slot = slot_cells(prompts, limits) * kv_bytes_per_cell(llm._model.model)
    by_kv = KV_BUDGET // max(1, slot * (batch_size + 1))
    return max(1, min(threads, len(prompts) // batch_size, by_kv))


def worker_items(n: int, batch_size: int, workers: int) -> list[list[int]]:
    """Prompt indices of each worker: blocks of ``batch_size`` consecutive prompts dealt in
    turn, so neighbours (which share openings) stay together, the workers' loads even out
    over the suite, and the split depends on nothing but ``n``."""
    blocks = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    return [[i for b in blocks[w::workers] for i in b] for w in range(workers)]
