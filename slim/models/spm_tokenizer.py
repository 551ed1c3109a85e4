"""A small seeded SentencePiece BPE tokenizer for test models of SentencePiece families.

llama.cpp's converter reads ``tokenizer.model`` for Gemma 2 and Phi-3 (no BPE
fallback), so their tiny test models need a real SentencePiece model, and none
may be downloaded. SentencePiece trains one from shipped text in well under a
second, deterministically (one thread, no shuffling). The HF side is the
family's own tokenizer class built from the same pieces; merges are derived
from the vocabulary the way transformers' ``SentencePieceExtractor`` does (that
helper needs protobuf, which nothing else here uses).
"""
from __future__ import annotations

import io
from pathlib import Path

#: chat markers, user-defined so they stay single tokens in both runtimes
CHAT_TOKENS = ("<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                 "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
                 "{% endif %}")


def _gemma_style(model_type: str) -> bool:
    return model_type.startswith("gemma")  # no dummy "▁" prefix; Llama-style SPMs add one


VOCAB_SIZE = 2048


def train(corpus: Path, model_type: str, vocab_size: int = VOCAB_SIZE) -> bytes:
    import sentencepiece as spm

    lines = [ln for ln in Path(corpus).read_text(encoding="utf-8").splitlines() if ln.strip()]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=buf, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, split_digits=True, character_coverage=1.0, num_threads=1,
        shuffle_input_sentence=False, user_defined_symbols=list(CHAT_TOKENS),
        add_dummy_prefix=not _gemma_style(model_type), normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=3, minloglevel=2)
    return buf.getvalue()


def _vocab_and_merges(sp) -> tuple[dict[str, int], list[tuple[str, str]]]:
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    merges = []
    for piece, pid in vocab.items():
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in vocab and right in vocab:
                merges.append((vocab[left], vocab[right], pid, left, right))
    merges.sort(key=lambda m: (m[2], m[0], m[1]))  # lower id = higher SentencePiece score
    return vocab, [(m[3], m[4]) for m in merges]


def hf_tokenizer(model_bytes: bytes, model_type: str):
    """The family's transformers tokenizer class over these pieces, with the chat template."""
    import sentencepiece as spm
    from transformers import GemmaTokenizer, LlamaTokenizer

    sp = spm.SentencePieceProcessor(model_proto=model_bytes)
    vocab, merges = _vocab_and_merges(sp)
    cls = GemmaTokenizer if _gemma_style(model_type) else LlamaTokenizer
    tok = cls(vocab=vocab, merges=merges, unk_token=sp.id_to_piece(sp.unk_id()),
              bos_token=sp.id_to_piece(sp.bos_id()), eos_token=CHAT_TOKENS[1],
              pad_token=sp.id_to_piece(sp.pad_id()))
    tok.add_special_tokens({"additional_special_tokens": list(CHAT_TOKENS)})
    tok.chat_template = CHAT_TEMPLATE
    return tok
