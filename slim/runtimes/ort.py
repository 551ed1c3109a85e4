"""onnxruntime-genai runtime for folders written by its model builder (``genai_config.json``).

Everything runs through ``onnxruntime_genai`` itself — ``Model``, ``Tokenizer``, ``Generator`` —
the way a user deploys the folder, on the execution provider its config names (the CPU EP for
the shipped methods), with ``intra_op_num_threads`` set to the build's thread count.

Log-probs of every position of a window: a fresh ``Generator`` (empty KV cache), one
``append_tokens(window)`` and ``get_output("logits")``, which returns the decoder's raw
``logits`` output for every appended position (``[1, n, vocab]``; ``get_logits()`` would give
the last row only). This is the exported graph's own prefill — the same kernels a deployment
runs — with no second code path: a plain ``onnxruntime.InferenceSession`` over ``model.onnx``
would need the builder's input contract (empty past tensors, attention-mask layout) rebuilt by
hand. Exactness is tested: those rows equal one-token-at-a-time decoding's to float rounding
(``decode_logprobs``) and, for an fp32 export, torch's on the HF folder to within the
cross-runtime noise floor the report states.

Chat rendering is the model's own Jinja template (``chat_template.jinja`` the builder copies,
else the tokenizer config's), applied by onnxruntime-genai's ``Tokenizer.apply_chat_template``
— the same template text the transformers and llama.cpp runtimes render; tests compare the
rendered prompts and token ids with transformers'. Generation is greedy, stopping at the
end-of-generation ids the other runtimes use (EOS plus end-of-turn tokens); probe suites decode
``batch_size`` prompts together in one ``Generator`` (``generate_batch``), whose answers equal
one-at-a-time decoding up to float rounding (tested).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from slim.errors import SlimError
from slim.runtimes.base import Runtime, cut_at_stop, default_threads, log_softmax
from slim.steps.base import note_device


def check_onnx_folder(path: str | Path) -> Path:
    from slim.models.onnx_folder import GENAI_CONFIG, model_file
    p = Path(path)
    if not p.is_dir() or not (p / GENAI_CONFIG).is_file():
        raise SlimError(f"{p} is not an onnxruntime-genai model folder (no {GENAI_CONFIG})",
                        "model_missing")
    if not model_file(p).is_file():
        raise SlimError(f"{p}: {GENAI_CONFIG} names {model_file(p).name}, which is missing",
                        "model_missing")
    return p


class OrtGenaiRuntime(Runtime):
    name = "onnxruntime-genai"

    def __init__(self, path: str | Path, n_ctx: int | None = 2048, threads: int | None = None,
                 seed: int = 0, **_ignored):
        import onnxruntime_genai as og

        from slim.models.onnx_folder import genai_config
        self.path = check_onnx_folder(path)
        self.threads = default_threads(threads)
        self.seed = int(seed)
        self._og = og
        gc = genai_config(self.path)
        mcfg = gc.get("model") or {}
        try:
            config = og.Config(str(self.path))
            config.overlay(json.dumps({"model": {"decoder": {"session_options": {
                "intra_op_num_threads": self.threads, "inter_op_num_threads": 1}}}}))
            self.model = og.Model(config)
            self.tokenizer = og.Tokenizer(self.model)
        except Exception as e:  # onnxruntime-genai raises RuntimeError / OrtException
            raise SlimError(f"onnxruntime-genai cannot load {self.path}: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}",
                            "model_load_failed") from None
        providers = [p.get("name") if isinstance(p, dict) else str(p) for p in
                     ((mcfg.get("decoder") or {}).get("session_options") or {})
                     .get("provider_options") or []]
        self.device = getattr(self.model, "device_type", None) or "cpu"
        note_device(f"onnxruntime-genai {self.device}" + (f" ({', '.join(map(str, providers))})"
                                                          if providers else " (CPU EP)"))
        ctx_len = int(mcfg.get("context_length") or n_ctx or 2048)
        self.n_ctx = int(min(n_ctx or ctx_len, ctx_len))
        self._vocab = int(mcfg["vocab_size"])
        self._template = self._find_template()
        self._vocab_map = self._token_map()
        self._bos = mcfg.get("bos_token_id")
        self._pad = mcfg.get("pad_token_id")
        self._eog = self._find_eog(mcfg)

    # -- tokens --------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._vocab

    def _token_map(self) -> dict[str, int]:
        """Token text -> id of the added/special tokens in tokenizer.json."""
        try:
            tj = json.loads((self.path / "tokenizer.json").read_text())
        except (OSError, ValueError):
            return {}
        out = {t["content"]: int(t["id"]) for t in tj.get("added_tokens") or []}
        vocab = (tj.get("model") or {}).get("vocab")
        if isinstance(vocab, dict):
            for t in _end_of_turn():
                if t in vocab:
                    out.setdefault(t, int(vocab[t]))
        return out

    def _find_eog(self, mcfg: dict) -> frozenset[int]:
        ids: set[int] = set()
        eos = mcfg.get("eos_token_id")
        for src in (eos, list(self.tokenizer.eos_token_ids)):
            if isinstance(src, int):
                ids.add(src)
            elif isinstance(src, (list, tuple, np.ndarray)):
                ids.update(int(i) for i in src)
        ids.update(self._vocab_map[t] for t in _end_of_turn() if t in self._vocab_map)
        return frozenset(i for i in ids if 0 <= i < self._vocab)

    @property
    def eog_ids(self) -> frozenset[int]:
        return self._eog

    def tokenize(self, text: str, add_bos: bool) -> list[int]:
        ids = [int(t) for t in self.tokenizer.encode(text)] if text else []
        bos = self._bos
        if bos is None:
            return ids
        if not add_bos and ids and ids[0] == bos and not text.startswith(self._text_of(bos)):
            ids = ids[1:]   # the tokenizer added a BOS the caller did not ask for
        return ids

    def _text_of(self, tid: int) -> str:
        for k, v in self._vocab_map.items():
            if v == tid:
                return k
        return "\0"

    def detokenize(self, tokens: Sequence[int]) -> str:
        toks = [int(t) for t in tokens if int(t) not in self._special_ids]
        if not toks:
            return ""
        return self.tokenizer.decode(np.asarray(toks, dtype=np.int32))

    @property
    def _special_ids(self) -> frozenset[int]:
        if not hasattr(self, "_special"):
            try:
                tj = json.loads((self.path / "tokenizer.json").read_text())
                self._special = frozenset(int(t["id"]) for t in tj.get("added_tokens") or []
                                          if t.get("special"))
            except (OSError, ValueError):
                self._special = frozenset()
        return self._special

    # -- scoring -------------------------------------------------------------
    def _generator(self, max_length: int, min_length: int = 0):
        og = self._og
        params = og.GeneratorParams(self.model)
        params.set_search_options(do_sample=False, max_length=int(max_length),
                                  min_length=int(min_length), batch_size=1)
        return og.Generator(self.model, params)

    def logits(self, tokens: Sequence[int]) -> np.ndarray:
        """Raw float32 logits ``[len(tokens), vocab]`` of one window (fresh generator)."""
        toks = self._check_window(tokens)
        gen = self._generator(max(len(toks) + 1, 2))
        gen.append_tokens(np.asarray([toks], dtype=np.int32))
        out = np.array(gen.get_output("logits"), dtype=np.float32)
        del gen
        return out.reshape(-1, out.shape[-1])[-len(toks):]

    def logprobs(self, tokens: Sequence[int]) -> np.ndarray:
        return log_softmax(self.logits(tokens))

    def decode_logprobs(self, prompt: Sequence[int], tokens: Sequence[int]) -> np.ndarray:
        prompt = self._check_prompt(prompt)
        gen = self._generator(len(prompt) + len(tokens) + 1)
        gen.append_tokens(np.asarray([prompt], dtype=np.int32))
        for t in tokens:
            gen.append_tokens(np.asarray([[int(t)]], dtype=np.int32))
        x = np.array(gen.get_output("logits"), dtype=np.float64).reshape(-1, self._vocab)[-1]
        return x - np.logaddexp.reduce(x)

    # -- generation ----------------------------------------------------------
    def _find_template(self) -> str | None:
        f = self.path / "chat_template.jinja"
        if f.is_file():
            return f.read_text()
        try:
            tc = json.loads((self.path / "tokenizer_config.json").read_text())
        except (OSError, ValueError):
            return None
        t = tc.get("chat_template")
        return t if isinstance(t, str) else None

    @property
    def chat_template(self) -> str | None:
        return self._template

    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        if not self._template:
            raise SlimError(f"{self.path} has no chat template (chat_template.jinja / "
                            f"tokenizer_config.json); it cannot run chat probes", "no_chat_template")
        return self.tokenizer.apply_chat_template(json.dumps(list(messages)),
                                                  template_str=self._template,
                                                  add_generation_prompt=add_generation_prompt)

    def generate(self, prompt_tokens: Sequence[int], max_tokens: int,
                 stop: Sequence[str] = (), ignore_eos: bool = False) -> list[int]:
        prompt = self._check_prompt(prompt_tokens)
        max_tokens = min(int(max_tokens), self.n_ctx - len(prompt))
        if max_tokens <= 0:
            return []
        total = len(prompt) + max_tokens
        gen = self._generator(total, total if ignore_eos else 0)
        gen.append_tokens(np.asarray([prompt], dtype=np.int32))
        out: list[int] = []
        while len(out) < max_tokens and not gen.is_done():
            gen.generate_next_token()
            t = int(gen.get_next_tokens()[0])
            if not ignore_eos and t in self._eog:
                break
            out.append(t)
            if stop and cut_at_stop(self.detokenize(out), stop)[1]:
                break
        del gen
        return out

    def generate_batch(self, prompts: Sequence[Sequence[int]], max_tokens: int | Sequence[int],
                       stop: Sequence[str] = (), ignore_eos: bool = False, batch_size: int = 16,
                       on_done=None) -> list[list[int]]:
        """onnxruntime-genai's own batched decoding: ``batch_size`` prompts of similar length
        right-padded with the model's pad id into one ``Generator`` (the layout its
        ``Tokenizer.encode_batch`` makes), greedy, each row cut at its own limit or
        end-of-generation token. Stop strings, ``ignore_eos`` and a prompt ending in the pad id
        (its padding would be ambiguous) decode one at a time."""
        pad = self._pad
        if stop or ignore_eos or batch_size <= 1 or pad is None:
            return super().generate_batch(prompts, max_tokens, stop, ignore_eos, batch_size,
                                          on_done)
        prompts, limits, out, todo = self._batch_rows(prompts, max_tokens, on_done)
        for a in range(0, len(todo), batch_size):
            rows = todo[a:a + batch_size]
            if len(rows) == 1 or any(prompts[i][-1] == pad for i in rows):
                for i in rows:
                    out[i] = self.generate(prompts[i], limits[i])
                    if on_done:
                        on_done(i)
                continue
            width = max(len(prompts[i]) for i in rows)
            steps = max(limits[i] for i in rows)
            arr = np.full((len(rows), width), pad, dtype=np.int32)
            for j, i in enumerate(rows):
                arr[j, :len(prompts[i])] = prompts[i]
            og = self._og
            params = og.GeneratorParams(self.model)
            params.set_search_options(do_sample=False, max_length=width + steps,
                                      batch_size=len(rows))
            gen = og.Generator(self.model, params)
            gen.append_tokens(arr)
            live = set(range(len(rows)))
            for _ in range(steps):
                if not live or gen.is_done():
                    break
                gen.generate_next_token()
                nxt = np.asarray(gen.get_next_tokens()).reshape(-1)
                for j in sorted(live):
                    i, t = rows[j], int(nxt[j])
                    if t in self._eog:
                        live.discard(j)
                    else:
                        out[i].append(t)
                        if len(out[i]) >= limits[i]:
                            live.discard(j)
                    if j not in live and on_done:
                        on_done(i)
            for j in sorted(live):
                if on_done:
                    on_done(rows[j])
            del gen
        return out

    # -- speed ---------------------------------------------------------------
    def _time_prompt(self, tokens: list[int]) -> float:
        gen = self._generator(len(tokens) + 1)
        t0 = time.perf_counter()
        gen.append_tokens(np.asarray([tokens], dtype=np.int32))
        return time.perf_counter() - t0

    def _time_generation(self, tokens: list[int], n: int) -> float:
        total = len(tokens) + n
        gen = self._generator(total, total)
        gen.append_tokens(np.asarray([tokens], dtype=np.int32))
        t0 = time.perf_counter()
        for _ in range(n):
            gen.generate_next_token()
        return time.perf_counter() - t0

    def close(self) -> None:
        self.tokenizer = None
        self.model = None


def _end_of_turn() -> tuple[str, ...]:
    from slim.runtimes.hf import _END_OF_TURN
    return _END_OF_TURN
