"""`dolma mix` configuration: Dolma's keys, plus sampling and target proportions (ours)."""

from __future__ import annotations

from dataclasses import dataclass

from dolma_tools.config import RuntimeConfig, option
from dolma_tools.errors import ConfigError
from dolma_tools.mixers.filters import SYNTAXES

TWO_GIB = 2 * 1024 ** 3
OUTPUT_FORMATS = ("jsonl", "parquet")


@dataclass
class StreamOutputConfig:
    path: str = option(help="output directory of this stream's shards", required=True)
    max_size_in_bytes: int = option(TWO_GIB, help="cut shards at about this many output (compressed) bytes "
                                                  "(shuffle: false: ignored, one output per input)")
    discard_fields: list[str] = option(default_factory=list, help="top-level document keys to drop")
    min_text_length: int = option(0, help="drop documents whose stripped text has fewer UTF-8 bytes")
    format: str = option("jsonl", help="jsonl (compressed per compression.output) or parquet (ours)")


@dataclass
class FilterConfig:
    include: list[str] = option(default_factory=list, help="keep documents matching any of these")
    exclude: list[str] = option(default_factory=list, help="drop documents matching any of these")
    syntax: str = option("jsonpath", help="jsonpath (Dolma's dialect), jq or python")


@dataclass
class SpanReplacementConfig:
    span: str = option(help="selector of [start, end, score] spans", required=True)
    min_score: float | None = option(None, help="replace spans with score >= min_score")
    max_score: float | None = option(None, help="replace spans with score < max_score")
    replacement: str = option("", help="replacement text; {} is the original span text")
    syntax: str = option("jsonpath", help="jsonpath, jq or python")


@dataclass
class CompressionConfig:
    input: str | None = option(None, help="force the input codec (gz, zst, or '' for none)")
    output: str | None = option(None, help="output codec: gz (default), zst, or '' for none")


@dataclass
class StreamConfig:
    name: str = option(help="stream name; output shards are <name>-NNNN.jsonl.gz", required=True)
    documents: list[str] = option(default_factory=list, help="document files or globs", required=True)
    attributes: list[str] = option(default_factory=list, help="attribute sets attributes/<name>/ to join")
    output: StreamOutputConfig = option(default_factory=lambda: StreamOutputConfig(path=""))
    filter: FilterConfig | None = option(None, help="include/exclude patterns")
    span_replacement: list[SpanReplacementConfig] = option(default_factory=list, help="span replacements")
    compression: CompressionConfig = option(default_factory=CompressionConfig)
    sample: float | None = option(None, help="keep this fraction of documents (seeded by document id)")
    upsample: float | None = option(None, help="repeat each document this many times (fractional allowed)")


@dataclass
class MixConfig(RuntimeConfig):
    streams: list[StreamConfig] = option(default_factory=list, help="the streams to mix", required=True)
    shuffle: bool = option(True, help="true: shuffle within each input file (shuffle_buffer) into numbered shards; "
                                      "false: Dolma's strict filter mode, each input to "
                                      "<output.path>/documents/<its path>, in order")
    shuffle_buffer: int = option(10000, help="documents held for shuffling, per input file (1 keeps input order)")
    seed: int = option(0, help="seed for sampling and shuffling")
    target_mix: dict[str, float] = option(default_factory=dict,
                                          help="stream name -> proportion of the output (by bytes/tokens)")
    total_tokens: int | None = option(None, help="with target_mix: estimated tokens of the whole mix")
    total_bytes: int | None = option(None, help="with target_mix: text bytes of the whole mix")
    allow_missing_attributes: bool = option(False, help="warn instead of failing when an attribute file is missing")


def validate(cfg: MixConfig) -> None:
    """Checks that need the whole config; every message names the stream and key."""
    if not cfg.streams:
        raise ConfigError("missing required config key `streams`")
    names = set()
    for i, stream in enumerate(cfg.streams):
        where = f"streams[{i}]"
        if not stream.name:
            raise ConfigError(f"{where}: missing `name`")
        if stream.name in names:
            raise ConfigError(f"{where}: duplicate stream name {stream.name!r}")
        names.add(stream.name)
        where = f"stream {stream.name!r}"
        if not stream.documents:
            raise ConfigError(f"{where}: missing `documents`")
        if not stream.output.path:
            raise ConfigError(f"{where}: missing `output.path`")
        if stream.output.max_size_in_bytes <= 0:
            raise ConfigError(f"{where}: `output.max_size_in_bytes` must be positive")
        if stream.output.format not in OUTPUT_FORMATS:
            raise ConfigError(f"{where}: `output.format` must be jsonl or parquet, got {stream.output.format!r}")
        if stream.filter is not None:
            if not stream.filter.include and not stream.filter.exclude:
                raise ConfigError(f"{where}: `filter` needs a non-empty `include` or `exclude`")
            if stream.filter.syntax.lower() not in SYNTAXES:
                raise ConfigError(f"{where}: unknown filter syntax {stream.filter.syntax!r} "
                                  f"(use {', '.join(SYNTAXES)})")
        for j, rep in enumerate(stream.span_replacement):
            if rep.min_score is None and rep.max_score is None:
                raise ConfigError(f"{where}: span_replacement[{j}] needs `min_score` or `max_score`")
        for codec in (stream.compression.input, stream.compression.output):
            if codec not in (None, "", "gz", "gzip", "zst", "zstd"):
                raise ConfigError(f"{where}: unknown compression {codec!r} (use gz, zst or '')")
        if stream.sample is not None and not 0 <= stream.sample <= 1:
            raise ConfigError(f"{where}: `sample` is a fraction between 0 and 1, got {stream.sample}")
        if stream.upsample is not None and stream.upsample < 0:
            raise ConfigError(f"{where}: `upsample` must be >= 0, got {stream.upsample}")
        if cfg.target_mix and (stream.sample is not None or stream.upsample is not None):
            raise ConfigError(f"{where}: `sample`/`upsample` cannot be combined with `target_mix`")
    if cfg.target_mix:
        unknown = sorted(set(cfg.target_mix) - names)
        if unknown:
            raise ConfigError(f"target_mix names unknown stream(s): {', '.join(unknown)}")
        missing = sorted(names - set(cfg.target_mix))
        if missing:
            raise ConfigError(f"target_mix must give a proportion for every stream; missing: {', '.join(missing)}")
        if any(p < 0 for p in cfg.target_mix.values()) or sum(cfg.target_mix.values()) <= 0:
            raise ConfigError("target_mix proportions must be >= 0 and not all zero")
        if cfg.total_tokens is not None and cfg.total_bytes is not None:
            raise ConfigError("set at most one of `total_tokens` and `total_bytes`")
    elif cfg.total_tokens is not None or cfg.total_bytes is not None:
        raise ConfigError("`total_tokens`/`total_bytes` need `target_mix`")
    if cfg.shuffle_buffer < 1:
        raise ConfigError("`shuffle_buffer` must be >= 1")
