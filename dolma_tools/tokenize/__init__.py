"""`dolma tokens`: documents -> headerless memmap token shards (+ csv.gz metadata, tokens.json).

- `tokenizers`: offline tokenizer resolution, EOS/pad ids, dtype rules (`load_tokenizer`).
- `config`: the stage config (Dolma's keys).
- `plan`: seeded assignment of input files to writer groups (decided in the driver).
- `writer`: encoding and the shard writer of one group.
- `shards`: the `tokens.json` manifest and the `TokenShards` reader.
- `runner`: `run_tokens`, the stage.
- `train_bpe`: `dolma train-tokenizer`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TokenShards", "load_tokenizer", "known_special_ids"]


def __getattr__(name: str) -> Any:  # lazy, so importing the package stays cheap
    if name == "TokenShards":
        from dolma_tools.tokenize.shards import TokenShards

        return TokenShards
    if name in ("load_tokenizer", "known_special_ids"):
        from dolma_tools.tokenize import tokenizers as _tokenizers

        return getattr(_tokenizers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
