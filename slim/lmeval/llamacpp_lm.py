"""An in-process lm-eval model over llama-cpp-python (``model="slim-llamacpp"``).

lm-eval's own ``gguf`` model talks to a llama.cpp *server* over HTTP and gets
only top-k logprobs back; this one scores with the full distribution in
process, through :class:`slim.runtimes.llamacpp.LlamaCppRuntime`:

* ``loglikelihood`` — sum of the continuation's token log-probs and whether
  greedy decoding would have produced it (``is_greedy``), from one forward pass
  over ``context + continuation`` (left-truncated to ``n_ctx``).
* ``loglikelihood_rolling`` — lm-eval's rolling disjoint windows of ``n_ctx``.
* ``generate_until`` — greedy decoding (sampling arguments are ignored), stops
  at the ``until`` strings, an end-of-generation token, or ``max_gen_toks``.

Consecutive requests that share a prefix (the choices of one multiple-choice
question) reuse its KV cache and logits (``reuse_prefix=True``, the default);
scores then equal a fresh evaluation up to float rounding (~1e-6), and the
request order, hence the result, is deterministic.

Tokenization follows ``HFLM``: the model's default special tokens are added to
a context unless it already starts with the BOS text, and an empty context is
replaced by the BOS token (EOS if the model has none).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from lm_eval import utils
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from slim.runtimes.base import cut_at_stop


def continuation_logprob(logits, cont: list[int], chunk: int = 256) -> tuple[float, bool]:
    """Sum of log-softmax(logits)[i, cont[i]] in float64, and whether every cont[i] is the argmax."""
    total, greedy = 0.0, True
    for a in range(0, len(cont), chunk):
        x = np.asarray(logits[a:a + chunk], dtype=np.float64)
        t = np.asarray(cont[a:a + chunk])
        m = x.max(axis=1)
        lse = m + np.log(np.exp(x - m[:, None]).sum(axis=1))
        total += float((x[np.arange(len(t)), t] - lse).sum())
        greedy = greedy and bool((x.argmax(axis=1) == t).all())
    return total, greedy


@register_model("slim-llamacpp", "slim_llamacpp")
class LlamaCppLM(TemplateLM):
    backend = "causal"

    def __init__(self, pretrained: str | None = None, n_ctx: int = 2048,
                 threads: int | None = None, seed: int = 0, max_gen_toks: int = 256,
                 runtime=None, reuse_prefix: bool = True, **kwargs: Any):
        super().__init__()
        if runtime is None:
            if not pretrained:
                raise ValueError("slim-llamacpp needs pretrained=<path to a .gguf file>")
            from slim.runtimes.llamacpp import LlamaCppRuntime
            runtime = LlamaCppRuntime(pretrained, n_ctx=int(n_ctx),
                                      threads=int(threads) if threads else None, seed=int(seed))
            self._owns_runtime = True
        else:
            self._owns_runtime = False
        self.rt = runtime
        self.max_gen_toks = int(max_gen_toks)
        self.reuse_prefix = bool(reuse_prefix) and hasattr(runtime, "logits")
        self.pretrained = str(runtime.path)

    # -- tokens --------------------------------------------------------------
    @property
    def eot_token_id(self) -> int:
        eos = self.rt.eos_id
        return eos if eos is not None else 0

    @property
    def prefix_token_id(self) -> int:
        bos = self.rt.bos_id
        return bos if bos is not None else self.eot_token_id

    @property
    def max_length(self) -> int:
        return self.rt.n_ctx

    def tok_encode(self, string: str, add_special_tokens: bool | None = None,
                   left_truncate_len: int | None = None, **kwargs) -> list[int]:
        if add_special_tokens is None:
            bos = self.rt.bos_text
            add_special_tokens = not (bos and string.startswith(bos))
        enc = self.rt.tokenize(string, add_bos=bool(add_special_tokens))
        if left_truncate_len:
            enc = enc[-left_truncate_len:]
        return enc

    def tok_decode(self, tokens: list[int], **kwargs) -> str:
        return self.rt.detokenize(tokens)

    # -- scoring -------------------------------------------------------------
    def _score(self, context_enc: list[int], continuation_enc: list[int]) -> tuple[float, bool]:
        if not continuation_enc:
            return 0.0, True
        whole = list(context_enc) + list(continuation_enc)
        if len(context_enc) == 0:  # nothing to condition on: use the prefix token
            whole = [self.prefix_token_id] + whole
        whole = whole[-(self.rt.n_ctx + 1):]  # left-truncate to the window
        cont = list(continuation_enc)[-(len(whole) - 1):]
        rows = self.rt.logits(whole[:-1], reuse_prefix=self.reuse_prefix)[-len(cont):]
        return continuation_logprob(rows, cont)

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False,
                              **kwargs) -> list[tuple[float, bool]]:
        out = []
        for key, context_enc, continuation_enc in tqdm(requests, disable=disable_tqdm,
                                                       desc="loglikelihood (llama.cpp)"):
            ans = self._score(context_enc, continuation_enc)
            if key is not None:
                self.cache_hook.add_partial("loglikelihood", key, ans)
            out.append(ans)
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        out = []
        for req in tqdm(requests, disable=disable_tqdm, desc="loglikelihood_rolling (llama.cpp)"):
            (string,) = req.args
            windows = map(utils.make_disjoint_window, utils.get_rolling_token_windows(
                token_list=self.tok_encode(string), prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length, context_len=1))
            total = sum(self._score(c, t)[0] for c, t in windows)
            self.cache_hook.add_partial("loglikelihood_rolling", (string,), total)
            out.append(total)
        return out

    # -- generation ----------------------------------------------------------
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        out = []
        for req in tqdm(requests, disable=disable_tqdm, desc="generate_until (llama.cpp)"):
            context, gen_kwargs = req.args
            kw = dict(gen_kwargs or {})
            until = kw.pop("until", None) or []
            if isinstance(until, str):
                until = [until]
            eos_text = self.rt.eos_text
            if eos_text and eos_text not in until:
                until = list(until) + [eos_text]
            max_gen = int(kw.pop("max_gen_toks", self.max_gen_toks))
            max_gen = max(1, min(max_gen, self.max_length - 1))
            ctx = self.tok_encode(context, left_truncate_len=self.max_length - max_gen)
            if not ctx:
                ctx = [self.prefix_token_id]
            toks = self.rt.generate(ctx, max_gen, stop=until)
            text, _ = cut_at_stop(self.rt.detokenize(toks), until)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
            out.append(text)
        return out

    # -- chat templates (lm-eval --apply_chat_template) ---------------------
    def apply_chat_template(self, chat_history: list[dict[str, str]],
                            add_generation_prompt: bool = True) -> str:
        return self.rt.render_chat(chat_history, add_generation_prompt=add_generation_prompt)

    @property
    def tokenizer_name(self) -> str:
        return self.pretrained.replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        if chat_template is False or chat_template is None:
            return None
        return self.rt.chat_template

    def get_model_info(self) -> dict:
        return {"model_kind": "llama.cpp", "model_path": self.pretrained,
                "n_ctx": self.rt.n_ctx, "threads": self.rt.threads}

    def close(self) -> None:
        if self._owns_runtime:
            self.rt.close()
