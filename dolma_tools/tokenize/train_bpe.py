"""`dolma train-tokenizer`: a byte-level BPE tokenizer trained on documents, ready for `dolma tokens`.

The tokenizer has the GPT-NeoX/OLMo shape (NFC normaliser, byte-level pre-tokenizer without
prefix space, byte-level decoder), so `dolma tokens` encodes its ASCII text on the fast path.
EOS (`<|endoftext|>`) and pad (`<|padding|>`) are special tokens with ids 0 and 1; the PII masks
`dolma tag` / `dolma mix` write (`|||EMAIL_ADDRESS|||`, `|||PHONE_NUMBER|||`, `|||IP_ADDRESS|||`)
are added tokens, so a masked span is one id. The vocabulary is padded with unused
`<|extra_id_N|>` special tokens to a multiple of 128 (the embedding size a trainer wants).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterator

from dolma_tools.config import RuntimeConfig, option
from dolma_tools.errors import UserError
from dolma_tools.io.documents import BadLine, iter_json_records
from dolma_tools.io.files import AtomicWriter
from dolma_tools.io.paths import expand_globs
from dolma_tools.tokenize.tokenizers import EMBEDDING_MULTIPLE, PII_MASKS, padded_vocab_size

log = logging.getLogger("dolma_tools.tokenize")

EOS = "<|endoftext|>"
PAD = "<|padding|>"


@dataclass
class TrainFields:
    text_field_name: str = option("text", help="document field holding the text (dotted for nested fields)")


@dataclass
class TrainTokenizerConfig(RuntimeConfig):
    documents: list[str] = option(default_factory=list, help="document files or globs", required=True)
    output: str | None = option(None, help="where to write the tokenizer JSON", required=True)
    vocab_size: int = option(32000, help="target vocabulary, special tokens included (rounded up to a multiple of 128)")
    min_frequency: int = option(2, help="minimum count of a pair to be merged")
    special_tokens: list[str] = option(default_factory=lambda: [EOS, PAD],
                                       help="special tokens, first ids in this order (EOS first, then pad)")
    pii_masks: bool = option(True, help="add the PII mask strings as single tokens")
    max_documents: int | None = option(None, help="train on at most this many documents")
    fields: TrainFields = field(default_factory=TrainFields)


def _texts(paths: list[str], text_field: str, limit: int | None, counts: dict) -> Iterator[str]:
    for path in paths:
        for _, record in iter_json_records(path):
            if limit is not None and counts["documents"] >= limit:
                return
            if isinstance(record, BadLine):
                counts["skipped"] += 1
                continue
            value = record
            for part in text_field.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if not isinstance(value, str):
                counts["skipped"] += 1
                continue
            text = value.strip()
            if text:
                counts["documents"] += 1
                yield text


def train_bpe(texts, vocab_size: int, special_tokens: list[str], min_frequency: int = 2, pii_masks: bool = True):
    """A trained `tokenizers.Tokenizer` whose vocabulary size is a multiple of 128."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    extra = [m for m in PII_MASKS if pii_masks and m not in special_tokens]
    target = max(vocab_size - len(extra), len(special_tokens) + 256 + 1)
    trainer = trainers.BpeTrainer(vocab_size=target, min_frequency=min_frequency, show_progress=False,
                                  special_tokens=list(special_tokens),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    if extra:
        tok.add_tokens([AddedToken(m, normalized=True, special=False) for m in extra])
    size = tok.get_vocab_size(with_added_tokens=True)
    padding = padded_vocab_size(size) - size
    if padding:
        tok.add_special_tokens([AddedToken(f"<|extra_id_{i}|>", special=True) for i in range(padding)])
    assert tok.get_vocab_size(with_added_tokens=True) % EMBEDDING_MULTIPLE == 0
    return tok


def run_train_tokenizer(cfg: TrainTokenizerConfig) -> dict:
    if cfg.vocab_size < 512:
        raise UserError(f"vocab_size must be at least 512 (256 bytes + merges), got {cfg.vocab_size}")
    if not cfg.special_tokens:
        raise UserError("special_tokens must hold at least the EOS token (e.g. <|endoftext|>)")
    paths = expand_globs(cfg.documents)
    counts = {"documents": 0, "skipped": 0}
    tok = train_bpe(_texts(paths, cfg.fields.text_field_name, cfg.max_documents, counts),
                    cfg.vocab_size, cfg.special_tokens, cfg.min_frequency, cfg.pii_masks)
    if counts["documents"] == 0:
        raise UserError(f"no documents with text in {', '.join(cfg.documents)}")
    with AtomicWriter(cfg.output, compression="") as out:
        out.write(tok.to_str(pretty=True).encode("utf-8"))
    info = {"output": cfg.output, "documents": counts["documents"], "skipped_lines": counts["skipped"],
            "vocab_size": tok.get_vocab_size(with_added_tokens=True),
            "eos_token_id": tok.token_to_id(cfg.special_tokens[0]),
            "pad_token_id": tok.token_to_id(cfg.special_tokens[1]) if len(cfg.special_tokens) > 1 else None}
    log.info("trained tokenizer: %s", info)
    print(f"train-tokenizer: {info['documents']:,} documents -> {cfg.output} (vocabulary {info['vocab_size']:,}, "
          f"EOS {info['eos_token_id']}, pad {info['pad_token_id']}); use it with "
          f"`dolma tokens --tokenizer.name_or_path {cfg.output}`")
    return info
