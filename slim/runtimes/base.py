"""One small interface over the model runtimes slim measures with.

A runtime loads one artifact (a GGUF file for llama.cpp, an HF folder for
transformers) and offers exactly what the probes need:

* ``tokenize(text, add_bos)`` — special-token text (``<|im_start|>``) is parsed
  as special tokens in both runtimes; ``add_bos`` adds what the model's own
  tokenizer adds at the start (nothing for models that do not use a BOS).
* ``logprobs(tokens)`` — log-softmax of the next-token logits at every position
  of one window (one forward pass, ``len(tokens) <= n_ctx``), computed in
  float64 and returned as float32 ``[len(tokens), vocab_size]``. Row ``i`` is
  the distribution of token ``i + 1``. Each call starts from an empty KV cache,
  so the numbers never depend on earlier calls.
* ``render_chat(messages)`` — the model's own chat template with
  ``add_generation_prompt=True``; ``chat(messages, max_tokens)`` tokenizes that
  text without adding special tokens again and decodes greedily until an
  end-of-generation token (EOS / end-of-turn) or ``max_tokens``.
* ``generate_batch`` / ``chat_batch`` — the same for many prompts, decoded
  several sequences at a time where the runtime can (llama.cpp's multi-sequence
  batches, transformers' padded batches): probe suites of hundreds of items are
  otherwise bound by one-token-at-a-time decoding.
* ``speed()`` — prompt and generation tokens/s measured on this host.
"""
from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from slim.errors import SlimError

# Fixed English text used to build speed-test prompts (content does not matter,
# only that it tokenizes to ordinary tokens).
_SPEED_TEXT = (
    "The quick brown fox jumps over the lazy dog while the river runs past the old mill. "
    "Scientists measure the speed of light, engineers build bridges across wide valleys, "
    "and children learn to read long stories about distant lands and friendly animals. "
)


def log_softmax(logits: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Row-wise log-softmax computed in float64 (in chunks of rows), returned as float32."""
    logits = np.asarray(logits)
    if logits.ndim == 1:
        return log_softmax(logits[None, :], chunk)[0]
    out = np.empty(logits.shape, dtype=np.float32)
    for a in range(0, logits.shape[0], chunk):
        x = logits[a:a + chunk].astype(np.float64)
        x -= x.max(axis=-1, keepdims=True)
        x -= np.log(np.exp(x).sum(axis=-1, keepdims=True))
        out[a:a + chunk] = x
    return out


def default_threads(threads: int | None) -> int:
    if threads:
        return int(threads)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def cut_at_stop(text: str, stops: Iterable[str]) -> tuple[str, bool]:
    """Text up to the earliest stop string, and whether one was found."""
    best = None
    for s in stops:
        if s:
            i = text.find(s)
            if i >= 0 and (best is None or i < best):
                best = i
    return (text, False) if best is None else (text[:best], True)


def token_limits(prompts: Sequence[Sequence[int]], max_tokens: int | Sequence[int]) -> list[int]:
    """One token limit per prompt."""
    if isinstance(max_tokens, int):
        return [max_tokens] * len(prompts)
    limits = [int(n) for n in max_tokens]
    if len(limits) != len(prompts):
        raise ValueError(f"{len(limits)} max_tokens for {len(prompts)} prompts")
    return limits


class Runtime(abc.ABC):
    """A loaded model. Use as a context manager or call ``close()``."""

    name: str = ""
    path: Path
    n_ctx: int
    threads: int

    # -- tokens --------------------------------------------------------------
    def _batch_rows(self, prompts, max_tokens, on_done):
        """Shared set-up of a batched generate: checked prompts, each row's limit (within
        n_ctx), empty outputs, and the rows to decode, shortest prompt first (less padding);
        rows with nothing to generate are reported done at once."""
        prompts = [self._check_prompt(p) for p in prompts]
        limits = [min(n, self.n_ctx - len(p))
                  for p, n in zip(prompts, token_limits(prompts, max_tokens))]
        out: list[list[int]] = [[] for _ in prompts]
        todo = sorted((i for i, n in enumerate(limits) if n > 0), key=lambda i: (len(prompts[i]), i))
        for i in (i for i, n in enumerate(limits) if n <= 0):
            if on_done:
                on_done(i)
        return prompts, limits, out, todo

    def _check_prompt(self, prompt_tokens: Sequence[int]) -> list[int]:
        """The prompt as ints; ValueError when it is empty or leaves no room to generate."""
        prompt = [int(t) for t in prompt_tokens]
        if not prompt:
            raise ValueError("generate needs at least one prompt token")
        if len(prompt) >= self.n_ctx:
            raise ValueError(f"prompt of {len(prompt)} tokens leaves no room in n_ctx={self.n_ctx}")
        return prompt

    @property
    @abc.abstractmethod
    def vocab_size(self) -> int:
        """Width of a logprobs row (the model's output vocabulary)."""

    @property
    @abc.abstractmethod
    def eog_ids(self) -> frozenset[int]:
        """Token ids that end generation (EOS and end-of-turn tokens)."""

    @abc.abstractmethod
    def tokenize(self, text: str, add_bos: bool) -> list[int]:
        """Token ids of ``text``; special-token text is parsed as special tokens."""

    @abc.abstractmethod
    def detokenize(self, tokens: Sequence[int]) -> str:
        """Text of ``tokens`` with special tokens left out."""

    # -- scoring -------------------------------------------------------------
    @abc.abstractmethod
    def logprobs(self, tokens: Sequence[int]) -> np.ndarray:
        """float32 ``[len(tokens), vocab_size]`` log-softmax of next-token logits."""

    def _check_window(self, tokens: Sequence[int]) -> list[int]:
        toks = [int(t) for t in tokens]
        if not toks:
            raise ValueError("logprobs needs at least one token")
        if len(toks) > self.n_ctx:
            raise ValueError(f"{len(toks)} tokens do not fit the context window n_ctx={self.n_ctx}")
        bad = [t for t in toks if not 0 <= t < self.vocab_size]
        if bad:
            raise ValueError(f"token id {bad[0]} is outside the vocabulary (size {self.vocab_size})")
        return toks

    def decode_logprobs(self, prompt: Sequence[int], tokens: Sequence[int]) -> np.ndarray:
        """float64 log-softmax of the next token after ``prompt + tokens`` as one-at-a-time
        greedy decoding computes it: the prompt in one pass, then each token alone.

        Quantized kernels for one row and for many rows round differently, so this
        can differ from the last row of :meth:`logprobs` (one pass over everything);
        :mod:`slim.runtimes.agreement` uses the gap to judge batched answers.
        """
        raise NotImplementedError(f"{type(self).__name__} has no decode_logprobs")

    # -- generation ----------------------------------------------------------
    @abc.abstractmethod
    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The prompt text the model's own chat template makes of ``messages``."""

    @abc.abstractmethod
    def generate(self, prompt_tokens: Sequence[int], max_tokens: int,
                 stop: Sequence[str] = (), ignore_eos: bool = False) -> list[int]:
        """Greedy continuation of ``prompt_tokens`` (ids, end-of-generation token excluded).

        Stops at an end-of-generation token (unless ``ignore_eos``), after
        ``max_tokens`` tokens, or once the decoded text contains a ``stop`` string
        (the returned tokens then include the one that completed it).
        """

    def generate_batch(self, prompts: Sequence[Sequence[int]], max_tokens: int | Sequence[int],
                       stop: Sequence[str] = (), ignore_eos: bool = False, batch_size: int = 16,
                       on_done: Callable[[int], None] | None = None) -> list[list[int]]:
        """:meth:`generate` for many prompts, in prompt order; ``max_tokens`` is one limit or one per prompt.

        Runtimes that can decode several sequences at once override this; the
        answers then equal one-at-a-time decoding up to float rounding (a near-tie
        between two tokens can flip). This fallback decodes one at a time.
        ``on_done(i)`` is called as prompt ``i`` finishes (for progress bars).
        """
        limits = token_limits(prompts, max_tokens)
        out = []
        for i, (p, n) in enumerate(zip(prompts, limits)):
            out.append(self.generate(p, n, stop=stop, ignore_eos=ignore_eos))
            if on_done:
                on_done(i)
        return out

    def chat_prompt_ids(self, messages: list[dict]) -> list[int]:
        """Token ids of the chat prompt :meth:`chat` decodes from (SlimError if it fills n_ctx)."""
        prompt = self.render_chat(messages, add_generation_prompt=True)
        ids = self.tokenize(prompt, add_bos=False)
        if len(ids) >= self.n_ctx:
            raise SlimError(f"chat prompt of {len(ids)} tokens does not fit n_ctx={self.n_ctx}",
                            "prompt_too_long")
        return ids

    def chat(self, messages: list[dict], max_tokens: int = 128) -> str:
        ids = self.chat_prompt_ids(messages)
        return self.detokenize(self.generate(ids, min(max_tokens, self.n_ctx - len(ids)))).strip()

    def chat_batch(self, conversations: Sequence[list[dict]], max_tokens: int = 128,
                   batch_size: int = 16, on_done: Callable[[int], None] | None = None) -> list[str]:
        """:meth:`chat` for many conversations at once (see :meth:`generate_batch`)."""
        ids = [self.chat_prompt_ids(m) for m in conversations]
        toks = self.generate_batch(ids, [min(max_tokens, self.n_ctx - len(i)) for i in ids],
                                   batch_size=batch_size, on_done=on_done)
        return [self.detokenize(t).strip() for t in toks]

    # -- speed ---------------------------------------------------------------
    def _speed_prompt(self, n: int) -> list[int]:
        ids: list[int] = []
        text = _SPEED_TEXT
        while len(ids) < n:
            ids = self.tokenize(text, add_bos=True)
            text += _SPEED_TEXT
        return ids[:n]

    @abc.abstractmethod
    def _time_prompt(self, tokens: list[int]) -> float:
        """Seconds to evaluate ``tokens`` from an empty cache (last logits only)."""

    @abc.abstractmethod
    def _time_generation(self, tokens: list[int], n: int) -> float:
        """Seconds to decode ``n`` greedy tokens after ``tokens`` (prompt excluded)."""

    def speed(self, prompt_tokens: int = 128, gen_tokens: int = 64) -> dict:
        """Prompt processing and generation tokens/s on this host (after one warm-up)."""
        if prompt_tokens < 1 or gen_tokens < 1:
            raise ValueError("prompt_tokens and gen_tokens must be positive")
        if prompt_tokens + gen_tokens > self.n_ctx:
            raise ValueError(f"prompt_tokens + gen_tokens = {prompt_tokens + gen_tokens} "
                             f"exceeds n_ctx={self.n_ctx}")
        toks = self._speed_prompt(prompt_tokens)
        self._time_generation(toks[:8], 4)  # warm-up: allocations, thread pools
        t_prompt = min(self._time_prompt(toks) for _ in range(2))
        t_gen = self._time_generation(toks, gen_tokens)
        return {"prompt_tokens_per_s": round(prompt_tokens / t_prompt, 2),
                "gen_tokens_per_s": round(gen_tokens / t_gen, 2),
                "prompt_tokens": prompt_tokens, "gen_tokens": gen_tokens,
                "threads": self.threads, "runtime": self.name}

    # -- lifetime ------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None:
        """Free the model."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} {self.path} n_ctx={self.n_ctx}>"


def runtime_kind(path: str | Path) -> str:
    """'llama.cpp' for a GGUF file, 'transformers' for an HF folder, 'onnxruntime-genai' for a
    folder with genai_config.json; SlimError otherwise."""
    p = Path(path)
    if not p.exists():
        raise SlimError(f"model file {p} does not exist", "model_missing")
    if p.is_dir():
        if (p / "genai_config.json").is_file():   # an onnxruntime-genai builder folder
            return "onnxruntime-genai"
        if (p / "config.json").is_file():
            return "transformers"
        ggufs = sorted(p.glob("*.gguf"))
        hint = f" (it holds {ggufs[0].name}: pass that file)" if ggufs else ""
        raise SlimError(f"{p} is a directory without config.json, not an HF model folder{hint}",
                        "model_missing")
    if p.suffix.lower() == ".gguf" or _is_gguf(p):
        return "llama.cpp"
    raise SlimError(f"{p}: not a model slim can run (expected a .gguf file or an HF folder "
                    f"with config.json)", "unsupported_model")


def _is_gguf(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False
