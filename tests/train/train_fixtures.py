"""Token shards for the trainer tests, written the way `dolma tokens` writes them.

Documents from the dev corpus are tokenized with OLMo's dolma-v1_5 tokenizer, EOS (50279) is
appended to each, and the ids go to raw uint16 memmaps with a headerless `start,end,id,src,loc`
`.csv.gz` beside each shard and a `tokens.json` manifest in the folder.
"""

from __future__ import annotations

import csv
import gzip
import json
from itertools import zip_longest
from pathlib import Path

import numpy as np
import olmo_eval

TOKENIZER = Path(olmo_eval.__file__).parent / "tokenizers" / "allenai_gpt-neox-olmo-dolma-v1_5.json"
EOS = 50279


def write_shards(corpus: Path, out: Path, tokens_per_shard: int, n_shards: int, skip_docs: int = 0,
                 sources: tuple[str, ...] = ("books", "news", "web", "speeches", "forums", "reviews"),
                 compact_vocab: int | None = None) -> list[Path]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(TOKENIZER))
    out.mkdir(parents=True, exist_ok=True)
    docs = []
    for src in sources:
        for path in sorted((corpus / src).glob("*.json.gz")):
            with gzip.open(path, "rt") as fh:
                for line_no, line in enumerate(fh):
                    d = json.loads(line)
                    docs.append((d["id"], src, f"{path.name}:{line_no}", d["text"]))
    docs.sort(key=lambda d: (d[2].split(":")[0], int(d[2].split(":")[1]), d[1]))
    # interleave sources so every shard holds several
    by_src: dict[str, list] = {}
    for d in docs:
        by_src.setdefault(d[1], []).append(d)
    mixed = [d for group in zip_longest(*by_src.values()) for d in group if d is not None][skip_docs:]
    it = iter(mixed)
    shards = []
    for s in range(n_shards):
        ids: list[int] = []
        rows = []
        while len(ids) < tokens_per_shard:
            doc_id, src, loc, text = next(it)
            enc = tok.encode(text[:4000], add_special_tokens=False).ids + [EOS]
            rows.append((len(ids), len(ids) + len(enc), doc_id, src, loc))
            ids.extend(enc)
        shards.append((np.asarray(ids, dtype=np.int64), rows))
    vocab, padded, eos, tokenizer = 50280, 50304, EOS, "allenai/gpt-neox-olmo-dolma-v1_5"
    if compact_vocab:
        # a small vocabulary keeps CPU tests fast: the most frequent ids keep their own id, the
        # rest share one; EOS becomes the last id
        counts = np.bincount(np.concatenate([ids for ids, _ in shards]), minlength=50304)
        counts[EOS] = 0
        keep = np.argsort(-counts, kind="stable")[: compact_vocab - 2]
        table = np.full(50304, compact_vocab - 2, dtype=np.int64)
        table[keep] = np.arange(len(keep))
        table[EOS] = compact_vocab - 1
        shards = [(table[ids], rows) for ids, rows in shards]
        vocab, padded, eos, tokenizer = compact_vocab, compact_vocab, compact_vocab - 1, None
    entries, paths = [], []
    for s, (ids, rows) in enumerate(shards):
        name = f"part-0-{s:05d}.npy"
        arr = np.memmap(out / name, dtype=np.uint16, mode="w+", shape=(len(ids),))
        arr[:] = ids
        arr.flush()
        with gzip.open(out / name.replace(".npy", ".csv.gz"), "wt", newline="") as fh:
            csv.writer(fh).writerows(rows)
        entries.append({"path": name, "tokens": len(ids), "documents": len(rows),
                        "metadata": name.replace(".npy", ".csv.gz")})
        paths.append(out / name)
    manifest = {"format": "dolma-tools/tokens/v1", "tokenizer": tokenizer,
                "tokenizer_sha256": None, "vocab_size": vocab, "padded_vocab_size": padded,
                "eos_token_id": eos, "bos_token_id": None, "pad_token_id": 1, "special_tokens": {},
                "dtype": "uint16", "seed": 0, "total_tokens": sum(e["tokens"] for e in entries),
                "total_documents": sum(e["documents"] for e in entries), "shards": entries}
    (out / "tokens.json").write_text(json.dumps(manifest, indent=2))
    return paths
