"""transformers runtime (torch) for HF model folders, on CUDA or Apple's MPS when present
(``device_map``: loaded straight onto the accelerator), else the CPU
(``SLIM_TORCH_DEVICE=cpu|cuda|mps`` chooses); the device is noted for the report.

Loads plain safetensors folders and compressed-tensors folders (GPTQ, FP8,
sparse... written by llm-compressor / auto-round): transformers decompresses
those itself when ``compressed-tensors`` is installed. Evaluation runs in
float32 by default (``dtype`` selects another); a 16-bit safetensors folder is not copied to
float32 for it: its weights stay in their bf16/fp16 dtype and each module is widened to float32
only while it computes (:mod:`slim.models.upcast`; the same numbers as a float32 copy, at 2
instead of 4 bytes per parameter). Quantized (compressed-tensors) folders still decompress
into ``dtype``: decompressing into 16 bits would round q*scale. Pickle weights are refused
unless ``allow_pickle=True``; remote code is never run unless
``trust_remote_code=True``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from slim.errors import SlimError
from slim.steps.base import device_label, note_device, torch_device
from slim.runtimes.base import Runtime, cut_at_stop, default_threads, log_softmax

# Tokens llama.cpp treats as end-of-generation when present in a vocabulary
# (llama-vocab.cpp: end-of-turn texts plus the FIM pad/repo/separator tokens), so
# both runtimes stop on the same set.
_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>",
                "<|endoftext|>", "<|end_of_text|>", "<|return|>", "<|call|>", "<EOT>",
                "_<EOT>", "<end_of_utterance>",
                "<|fim_pad|>", "<fim-pad>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                "<reponame>", "<|file_sep|>", "<file_sep>", "<fim-sep>")
_DTYPES = ("float32", "float16", "bfloat16")


def check_hf_folder(path: str | Path, allow_pickle: bool = False) -> Path:
    p = Path(path)
    if not p.exists():
        raise SlimError(f"model folder {p} does not exist", "model_missing")
    if not p.is_dir() or not (p / "config.json").is_file():
        raise SlimError(f"{p} is not an HF model folder (no config.json)", "model_missing")
    if not any(p.glob("*.safetensors")):
        pickles = sorted(p.glob("*.bin")) + sorted(p.glob("*.pt"))
        if not pickles:
            raise SlimError(f"{p} has config.json but no weights (*.safetensors)", "model_missing")
        if not allow_pickle:
            raise SlimError(f"{p} holds only pickle weights ({pickles[0].name}); convert them to "
                            f"safetensors, or allow pickle loading if you trust the file",
                            "pickle_weights")
    return p


class HFRuntime(Runtime):
    name = "transformers"

    def __init__(self, path: str | Path, n_ctx: int | None = 2048, threads: int | None = None,
                 seed: int = 0, dtype: str = "float32", trust_remote_code: bool = False,
                 allow_pickle: bool = False, float32_copy: bool = False):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if dtype not in _DTYPES:
            raise SlimError(f"dtype {dtype!r} is not one of {', '.join(_DTYPES)}", "invalid_dtype")
        self.path = check_hf_folder(path, allow_pickle)
        self.threads = default_threads(threads)
        self.seed = int(seed)
        self.dtype = dtype
        self._torch = torch
        torch.set_num_threads(self.threads)
        torch.manual_seed(self.seed)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path),
                                                           trust_remote_code=trust_remote_code)
        except (OSError, ValueError, TypeError) as e:
            raise SlimError(f"cannot load the tokenizer of {self.path}: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}",
                            "model_load_failed") from None
        # CUDA (or MPS) when present: loaded straight onto it (device_map), not via host RAM
        self.device = torch_device(torch)
        from slim.models.hf_io import is_quantized_folder, source_dtype
        from slim.models.upcast import storage_dtype
        # float32_copy: load a 16-bit folder as a float32 copy (the speed step: decoding speed
        # of the model, not of casting 16-bit weights per token; that costs 2-4x per token);
        # a quantized folder decompresses into ``dtype`` (its float dtype is the scales')
        src = None if float32_copy or is_quantized_folder(self.path) else source_dtype(self.path)
        self.storage_dtype = storage_dtype(src, dtype)
        try:
            self.model = AutoModelForCausalLM.from_pretrained(
                str(self.path), dtype=getattr(torch, self.storage_dtype),
                trust_remote_code=trust_remote_code,
                use_safetensors=None if allow_pickle else True,
                **({"device_map": self.device} if self.device != "cpu" else {}))
        except (OSError, ValueError, RuntimeError, KeyError, ImportError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise SlimError(f"transformers cannot load {self.path}: {msg}",
                            "model_load_failed") from None
        self.model.eval()
        self._upcast = None
        if self.storage_dtype != dtype:
            from slim.models.upcast import Float32Compute
            self._upcast = Float32Compute(self.model, getattr(torch, dtype))
        note_device(f"torch {device_label(torch, self.device)} {dtype}"
                    + (f" (weights {self.storage_dtype})" if self._upcast else ""))
        cfg = self.model.config
        max_pos = getattr(cfg, "max_position_embeddings", None) or n_ctx or 2048
        self.n_ctx = int(min(n_ctx or max_pos, max_pos))
        self._vocab = int(self.model.get_output_embeddings().weight.shape[0]) \
            if self.model.get_output_embeddings() is not None else int(cfg.vocab_size)
        self._eog = self._find_eog()

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            self._torch.cuda.synchronize()

    def _tensor(self, rows):
        return self._torch.tensor(rows, device=self.device)

    # -- tokens --------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._vocab

    def _find_eog(self) -> frozenset[int]:
        ids: set[int] = set()
        tok = self.tokenizer
        for src in (tok.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None),
                    getattr(self.model.config, "eos_token_id", None)):
            if isinstance(src, int):
                ids.add(src)
            elif isinstance(src, (list, tuple)):
                ids.update(int(i) for i in src)
        vocab = tok.get_vocab()
        ids.update(vocab[t] for t in _END_OF_TURN if t in vocab)
        return frozenset(i for i in ids if 0 <= i < self._vocab)

    @property
    def eog_ids(self) -> frozenset[int]:
        return self._eog

    def tokenize(self, text: str, add_bos: bool) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=add_bos)["input_ids"])

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.decode([int(t) for t in tokens], skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)

    # -- scoring -------------------------------------------------------------
    def logits(self, tokens: Sequence[int]) -> np.ndarray:
        """Raw float32 logits ``[len(tokens), vocab]`` of one window (fresh, no KV cache)."""
        torch = self._torch
        toks = self._check_window(tokens)
        with torch.inference_mode():
            out = self.model(input_ids=self._tensor([toks]), use_cache=False).logits[0]
        return out.to(torch.float32).cpu().numpy()

    def logprobs(self, tokens: Sequence[int]) -> np.ndarray:
        torch = self._torch
        toks = self._check_window(tokens)
        with torch.inference_mode():
            logits = self.model(input_ids=self._tensor([toks]), use_cache=False).logits[0]
        # the same float64 log-softmax as the llama.cpp runtime, on float32 logits
        return log_softmax(logits.to(torch.float32).cpu().numpy())

    # -- generation ----------------------------------------------------------
    @property
    def chat_template(self) -> str | None:
        return getattr(self.tokenizer, "chat_template", None)

    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        if not self.chat_template:
            raise SlimError(f"{self.path} has no chat template (tokenizer_config.json / "
                            f"chat_template.jinja); it cannot run chat probes", "no_chat_template")
        return self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=add_generation_prompt, tokenize=False)

    def _gen_config(self, max_tokens: int, ignore_eos: bool, stop: Sequence[str] = ()):
        from transformers import GenerationConfig
        eos = None if ignore_eos else sorted(self._eog) or None
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = min(self._eog) if self._eog else 0
        return GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=max_tokens,
                                min_new_tokens=max_tokens if ignore_eos else 0,
                                eos_token_id=eos, pad_token_id=pad,
                                stop_strings=list(stop) or None)

    def _trim(self, new: list[int], limit: int, stop: Sequence[str], ignore_eos: bool) -> list[int]:
        """Generated ids up to ``limit``, the first end-of-generation token, or a completed stop."""
        new = new[:limit]
        if not ignore_eos:
            for i, t in enumerate(new):
                if t in self._eog:
                    new = new[:i]
                    break
        if stop:  # keep tokens up to the one that completed a stop string
            for i in range(1, len(new) + 1):
                if cut_at_stop(self.detokenize(new[:i]), stop)[1]:
                    return new[:i]
        return new

    def _generate_rows(self, prompts: list[list[int]], max_new: int, stop: Sequence[str],
                       ignore_eos: bool) -> list[list[int]]:
        """One ``generate`` call over prompts left-padded to one length; the new ids of each row."""
        torch = self._torch
        width = max(len(p) for p in prompts)
        pad = self._gen_config(1, ignore_eos).pad_token_id
        ids = self._tensor([[pad] * (width - len(p)) + p for p in prompts])
        mask = self._tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        kwargs = {"tokenizer": self.tokenizer} if stop else {}
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask,
                                      generation_config=self._gen_config(max_new, ignore_eos, stop),
                                      **kwargs)
        return out[:, width:].tolist()

    def decode_logprobs(self, prompt: Sequence[int], tokens: Sequence[int]) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            out = self.model(input_ids=self._tensor([self._check_prompt(prompt)]), use_cache=True)
            for t in tokens:
                out = self.model(input_ids=self._tensor([[int(t)]]),
                                 past_key_values=out.past_key_values, use_cache=True)
        x = out.logits[0, -1].to(torch.float64).cpu().numpy()
        return x - np.logaddexp.reduce(x)

    def generate(self, prompt_tokens: Sequence[int], max_tokens: int,
                 stop: Sequence[str] = (), ignore_eos: bool = False) -> list[int]:
        prompt = self._check_prompt(prompt_tokens)
        max_tokens = min(max_tokens, self.n_ctx - len(prompt))
        if max_tokens <= 0:
            return []
        return self._trim(self._generate_rows([prompt], max_tokens, stop, ignore_eos)[0],
                          max_tokens, stop, ignore_eos)

    def generate_batch(self, prompts: Sequence[Sequence[int]], max_tokens: int | Sequence[int],
                       stop: Sequence[str] = (), ignore_eos: bool = False, batch_size: int = 16,
                       on_done=None) -> list[list[int]]:
        """transformers' own batched ``generate``: left padding, greedy, ``batch_size`` rows a call.

        Prompts are grouped by length (less padding) and answered in prompt order;
        each row is cut to its own limit, as :meth:`generate` would have stopped.
        """
        prompts, limits, out, todo = self._batch_rows(prompts, max_tokens, on_done)
        for a in range(0, len(todo), max(1, batch_size)):
            rows = todo[a:a + max(1, batch_size)]
            new = self._generate_rows([prompts[i] for i in rows], max(limits[i] for i in rows),
                                      stop, ignore_eos)
            for i, ids in zip(rows, new):
                out[i] = self._trim(ids, limits[i], stop, ignore_eos)
                if on_done:
                    on_done(i)
        return out

    # -- speed ---------------------------------------------------------------
    def _time_prompt(self, tokens: list[int]) -> float:
        torch = self._torch
        with torch.inference_mode():
            t0 = time.perf_counter()
            self.model(input_ids=self._tensor([tokens]), use_cache=True, logits_to_keep=1)
            self._sync()
            return time.perf_counter() - t0

    def _time_generation(self, tokens: list[int], n: int) -> float:
        torch = self._torch
        with torch.inference_mode():
            out = self.model(input_ids=self._tensor([tokens]), use_cache=True, logits_to_keep=1)
            past = out.past_key_values
            t = out.logits[0, -1].argmax().view(1, 1)
            t0 = time.perf_counter()
            for _ in range(n):
                out = self.model(input_ids=t, past_key_values=past, use_cache=True)
                past = out.past_key_values
                t = out.logits[0, -1].argmax().view(1, 1)
            self._sync()
            return time.perf_counter() - t0

    def close(self) -> None:
        self.model = None
        self.tokenizer = None
