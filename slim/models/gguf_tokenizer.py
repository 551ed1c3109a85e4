"""Rebuild a Hugging Face fast tokenizer from a GGUF's ``tokenizer.ggml.*`` metadata.

transformers' GGUF import turns a gpt2-style BPE vocab into a tokenizer with
``byte_fallback=True`` and a Sequence decoder. llama.cpp's converter then takes
the round trip for a SentencePiece-style vocab and writes ``tokenizer.ggml.model
= llama`` with the wrong pre-tokenizer, which breaks generation in llama.cpp.
Building the ByteLevel BPE tokenizer the way the original model shipped it makes
the converter recognise it (``gpt2`` + the model's pre-tokenizer hash).
"""
from __future__ import annotations

from pathlib import Path

from gguf import GGUFReader

from slim.errors import SlimError

# llama.cpp pre-tokenizer name -> HF pre-tokenizer pipeline
_DIGITS_FIRST = {"smollm", "qwen2", "llama-bpe"}


def gguf_metadata(path: str | Path, reader: GGUFReader | None = None) -> dict:
    try:
        r = reader or GGUFReader(str(path))
    except Exception as e:  # gguf raises ValueError/struct errors on corrupt files
        raise SlimError(f"{path}: not a readable GGUF file ({e})", "corrupt_gguf") from None
    meta = {}
    for name, field in r.fields.items():
        if name.startswith("tokenizer.ggml.") and name in ("tokenizer.ggml.tokens",
                                                          "tokenizer.ggml.merges",
                                                          "tokenizer.ggml.token_type",
                                                          "tokenizer.ggml.scores"):
            continue
        try:
            meta[name] = field.contents()
        except Exception:
            pass
    return meta


def tokenizer_from_gguf(path: str | Path, reader: GGUFReader | None = None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    r = reader or GGUFReader(str(path))
    f = r.fields
    model = f["tokenizer.ggml.model"].contents()
    if model != "gpt2":
        raise SlimError(f"{path}: tokenizer model {model!r} is not supported for import "
                        f"(only gpt2-style byte-level BPE)", "unsupported_tokenizer")
    tokens = f["tokenizer.ggml.tokens"].contents()
    merges = [tuple(m.split(" ", 1)) for m in f["tokenizer.ggml.merges"].contents()]
    types = f["tokenizer.ggml.token_type"].contents()
    pre = f["tokenizer.ggml.pre"].contents() if "tokenizer.ggml.pre" in f else "default"
    vocab = {t: i for i, t in enumerate(tokens)}

    def tok_id(key):
        return f[key].contents() if key in f else None

    bos, eos = tok_id("tokenizer.ggml.bos_token_id"), tok_id("tokenizer.ggml.eos_token_id")
    unk, pad = tok_id("tokenizer.ggml.unknown_token_id"), tok_id("tokenizer.ggml.padding_token_id")
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=False,
                              unk_token=tokens[unk] if unk is not None else None))
    parts = [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    if pre in _DIGITS_FIRST:
        parts.insert(0, pre_tokenizers.Digits(individual_digits=True))
    tk.pre_tokenizer = pre_tokenizers.Sequence(parts)
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    specials = [t for t, ty in zip(tokens, types) if ty == 3]  # CONTROL tokens
    tk.add_special_tokens(specials)
    name = lambda i: tokens[i] if i is not None else None  # noqa: E731
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token=name(bos), eos_token=name(eos), unk_token=name(unk),
        pad_token=name(pad if pad is not None else eos), clean_up_tokenization_spaces=False,
        model_max_length=f["llama.context_length"].contents() if "llama.context_length" in f else 8192)
    if "tokenizer.chat_template" in f:
        hf.chat_template = f["tokenizer.chat_template"].contents()
    return hf
