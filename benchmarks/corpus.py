"""Scale the dev corpus to a benchmark corpus of a given size, deterministically.

Every output document is a variant of a dev-corpus document: its paragraphs are shuffled and a few
percent of the words in each paragraph swap places, so most paragraphs are new text while the
vocabulary, language and length distribution stay those of the source. About `dup_rate` of the
documents are exact copies (new id, same text) of a recently generated document, as in web crawls.

The same (source corpus, size, seed) always gives the same bytes; the result is cached under the
output directory and reused while its manifest matches.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

try:
    import orjson

    def _dumps(obj: dict) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover - orjson is a project dependency
    def _dumps(obj: dict) -> bytes:
        return json.dumps(obj, ensure_ascii=False).encode()

MB = 1_000_000
MANIFEST = "manifest.json"
SCALER_VERSION = 2


@dataclass(frozen=True)
class ScaleParams:
    size_mb: float
    seed: int = 17
    swap_rate: float = 0.04  # fraction of words per paragraph that take part in a swap
    dup_rate: float = 0.10  # fraction of output documents that are exact copies
    file_mb: float = 0.0  # text per output file; 0 = size/16 clamped to [1, 16] MB
    pool_size: int = 2000  # recent documents a duplicate is drawn from

    def target_file_bytes(self) -> int:
        if self.file_mb > 0:
            return int(self.file_mb * MB)
        return int(min(16.0, max(1.0, self.size_mb / 16)) * MB)


@dataclass
class CorpusInfo:
    root: str  # dataset root; documents are under root/documents/<source>/*.jsonl.gz
    params: dict
    source_fingerprint: str
    documents: int = 0
    duplicates: int = 0
    text_bytes: int = 0
    paragraphs: int = 0
    files: list[str] = field(default_factory=list)
    version: int = SCALER_VERSION

    @property
    def documents_glob(self) -> str:
        return str(Path(self.root) / "documents" / "*" / "*.jsonl.gz")

    @property
    def text_mb(self) -> float:
        return self.text_bytes / MB


def source_files(corpus: str | Path) -> list[Path]:
    base = Path(corpus)
    docs = base / "documents" if (base / "documents").is_dir() else base
    files = sorted(p for p in docs.rglob("*") if p.is_file() and ".json" in p.name)
    if not files:
        raise FileNotFoundError(f"no *.json[l][.gz] files under {docs}")
    return files


def fingerprint(files: list[Path]) -> str:
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.name}:{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def read_source(files: list[Path]) -> list[tuple[str, dict]]:
    """(source directory name, document) for every document, in file then line order."""
    docs = []
    for path in files:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            for raw in fh:
                raw = raw.strip()
                if not raw:
                    continue
                doc = json.loads(raw)
                if isinstance(doc.get("text"), str) and doc["text"].strip():
                    docs.append((path.parent.name, doc))
    return docs


def vary_text(text: str, rng: random.Random, swap_rate: float) -> str:
    """Shuffle paragraphs, then swap about `swap_rate` of the words inside each paragraph."""
    paragraphs = text.split("\n")
    if len(paragraphs) > 1:
        rng.shuffle(paragraphs)
    out = []
    for par in paragraphs:
        words = par.split(" ")
        n = len(words)
        if n >= 2:
            expected = n * swap_rate / 2  # each swap moves two words
            swaps = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
            for _ in range(swaps):
                i, j = rng.randrange(n), rng.randrange(n)
                words[i], words[j] = words[j], words[i]
            par = " ".join(words)
        out.append(par)
    return "\n".join(out)


def count_paragraphs(text: str) -> int:
    return sum(1 for p in text.split("\n") if p.strip())


def generate(source: list[tuple[str, dict]], params: ScaleParams) -> Iterator[tuple[str, dict]]:
    """Yield (source name, document) until `size_mb` of text has been produced."""
    rng = random.Random(params.seed)
    target = int(params.size_mb * MB)
    produced = 0
    pool: list[tuple[str, dict]] = []
    counter = 0
    while produced < target:
        order = list(range(len(source)))
        rng.shuffle(order)  # every round visits the sources in a new, seeded order
        for index in order:
            src, doc = source[index]
            if produced >= target:
                return
            if pool and rng.random() < params.dup_rate:
                src, base = pool[rng.randrange(len(pool))]
                text = base["text"]
                origin = base["metadata"]["bench_origin"]
                template = base
            else:
                text = vary_text(doc["text"], rng, params.swap_rate)
                origin = doc["id"]
                template = doc
            metadata = dict(template.get("metadata") or {})
            metadata["bench_origin"] = origin
            out = {"id": f"{src}-b{counter:09d}", "text": text, "source": template.get("source", src)}
            for key in ("added", "created"):
                if key in template:
                    out[key] = template[key]
            out["metadata"] = metadata
            counter += 1
            produced += len(text.encode("utf-8"))
            if len(pool) < params.pool_size:
                pool.append((src, out))
            else:
                pool[rng.randrange(params.pool_size)] = (src, out)
            yield src, out


class _Writer:
    """Per-source rolling gzip writers with deterministic headers (mtime 0)."""

    def __init__(self, root: Path, target_bytes: int) -> None:
        self.root, self.target = root, target_bytes
        self.open: dict[str, tuple[gzip.GzipFile, object, int]] = {}
        self.counts: dict[str, int] = {}
        self.files: list[str] = []

    def write(self, src: str, doc: dict) -> None:
        gz, raw, size = self.open.get(src) or self._new(src)
        gz.write(_dumps(doc) + b"\n")
        size += len(doc["text"].encode("utf-8"))
        if size >= self.target:
            gz.close()
            raw.close()
            del self.open[src]
        else:
            self.open[src] = (gz, raw, size)

    def _new(self, src: str) -> tuple[gzip.GzipFile, object, int]:
        index = self.counts.get(src, 0)
        self.counts[src] = index + 1
        path = self.root / "documents" / src / f"{src}-{index:04d}.jsonl.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = open(path, "wb")
        gz = gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, compresslevel=6, mtime=0)
        self.files.append(str(path.relative_to(self.root)))
        return gz, raw, 0

    def close(self) -> None:
        for gz, raw, _ in self.open.values():
            gz.close()
            raw.close()
        self.open.clear()


def load_manifest(root: Path) -> CorpusInfo | None:
    path = root / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return CorpusInfo(**data)
    except (ValueError, TypeError):
        return None


def build_corpus(corpus: str | Path, out_root: str | Path, params: ScaleParams,
                 force: bool = False) -> CorpusInfo:
    """Build (or reuse) the scaled corpus at `out_root`; returns its manifest."""
    files = source_files(corpus)
    fp = fingerprint(files)
    root = Path(out_root)
    cached = load_manifest(root)
    if (not force and cached is not None and cached.params == asdict(params)
            and cached.source_fingerprint == fp and cached.version == SCALER_VERSION):
        cached.root = str(root)
        return cached
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    info = CorpusInfo(root=str(root), params=asdict(params), source_fingerprint=fp)
    writer = _Writer(root, params.target_file_bytes())
    seen_texts: set[bytes] = set()
    try:
        for src, doc in generate(read_source(files), params):
            writer.write(src, doc)
            info.documents += 1
            info.text_bytes += len(doc["text"].encode("utf-8"))
            info.paragraphs += count_paragraphs(doc["text"])
            digest = hashlib.blake2b(doc["text"].encode("utf-8"), digest_size=16).digest()
            if digest in seen_texts:
                info.duplicates += 1
            seen_texts.add(digest)
    finally:
        writer.close()
    info.files = sorted(writer.files)
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=1))
    os.replace(tmp, root / MANIFEST)
    return info


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Scale the dev corpus to a benchmark corpus.")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--size-mb", type=float, default=200)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    info = build_corpus(args.corpus, args.out, ScaleParams(size_mb=args.size_mb, seed=args.seed), args.force)
    print(json.dumps({k: v for k, v in asdict(info).items() if k != "files"}, indent=1))


if __name__ == "__main__":
    main()
