"""Configuration of `dolma tokens`: Dolma 1.2.1's keys (reference-dolma.md §6.5) plus a few additive ones."""

from __future__ import annotations

from dataclasses import dataclass

from dolma_tools.config import RuntimeConfig, option
from dolma_tools.tokenize.tokenizers import DEFAULT_TOKENIZER

DEFAULT_MAX_SIZE = 1 << 30  # tokens per shard, as Dolma counts it
DEFAULT_REFRESH = 1_000_000  # documents between tokenizer rebuilds when `refresh` is unset


@dataclass
class TokenizerConfig:
    name_or_path: str = option(DEFAULT_TOKENIZER, help="tokenizer JSON path, an OLMo tokenizer name, or a "
                               "Hugging Face name already in the local cache (never downloaded)")
    bos_token_id: int | None = option(None, help="prepend this id to each document (not already starting with it)")
    eos_token_id: int | None = option(None, help="append this id to each document; default: the tokenizer's "
                                      "end-of-text id (50279 for OLMo's dolma-v1_5 tokenizer)")
    pad_token_id: int | None = option(None, help="recorded in tokens.json, never written (default: the "
                                      "tokenizer's known pad id, else EOS)")
    segment_before_tokenization: bool = option(False, help="encode each newline-led paragraph separately, as Dolma")
    refresh: int | None = option(None, help=f"rebuild the tokenizer every N documents against the tokenizers "
                                 f"memory leak; 0 = never (default: {DEFAULT_REFRESH:,})")
    fast: bool = option(True, help="accepted for Dolma compatibility; the fast tokenizer is always used")
    encode_special_tokens: bool = option(False, help="encode special-token strings found in text as plain text")
    ascii_fast_path: bool = option(True, help="encode ASCII documents with dolma-tools' exact fast path "
                                   "(same ids as `tokenizers`, several times faster); --no-tokenizer.ascii_fast_path "
                                   "sends everything through `tokenizers`")


@dataclass
class FieldsConfig:
    text_field_name: str = option("text", help="document field holding the text (dotted for nested fields)")
    text_field_type: str = option("str", help="accepted for Dolma compatibility; text must be a string")
    id_field_name: str | None = option("id", help="document field holding the id; null: ids are "
                                       "<sha256(path)>-<line>, as Dolma")
    id_field_type: str = option("str", help="id type in the documents (str or int); ids are written as strings")


@dataclass
class TokensConfig(RuntimeConfig):
    documents: list[str] = option(default_factory=list, help="document files or globs", required=True)
    destination: str | None = option(None, help="directory for part-*.npy, part-*.csv.gz and tokens.json",
                                     required=True)
    tokenizer: TokenizerConfig = option(default_factory=TokenizerConfig)
    tokenizer_name_or_path: str | None = option(None, help="deprecated (Dolma): sets tokenizer.name_or_path and, "
                                                "unless given, EOS = vocabulary size - 1")
    fields: FieldsConfig = option(default_factory=FieldsConfig)
    dtype: str | None = option(None, help="uint16/uint32/uint64; default: uint16 when the vocabulary fits, "
                               "else uint32 (a type too small is refused)")
    max_size: int = option(DEFAULT_MAX_SIZE, help="tokens per shard (a document goes in while written + its "
                           "length < max_size; a longer document is split across shards)")
    batch_size: int = option(10000, help="documents per local shuffle buffer")
    ring_size: int = option(8, help="files of a group read at once, one document from each in turn")
    sample_ring_prop: bool = option(False, help="draw the next document from ring files in proportion to file size")
    files_per_process: int | None = option(None, help="input files per writer group (default 1: each file is "
                                           "its own group); groups never depend on `processes`")
    seed: int = option(3920, help="seeds file-to-group assignment and the local shuffle: same input and seed, "
                       "same shards, whatever the number of workers")
