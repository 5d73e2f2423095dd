"""`dolma tokens`: documents -> token shards + `tokens.json`.

The driver resolves the tokenizer and ids (failing early on a wrong EOS or dtype), assigns files
to groups from (seed, file list), and runs one task per group. A group reads its files through a
ring, encodes `batch_size` documents at a time, shuffles each batch with a generator seeded by
(seed, group) and writes shards. A group that finished before (its marker in
`.tokens-groups/` matches the settings) is skipped. The manifest is written last.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import orjson

from dolma_tools.errors import UserError
from dolma_tools.io.documents import BadLine
from dolma_tools.io.files import AtomicWriter, exists, is_remote, local_path, open_read
from dolma_tools.io.paths import expand_globs
from dolma_tools.runtime import FileResult, RunSummary, run_files
from dolma_tools.tokenize.config import DEFAULT_REFRESH, TokensConfig
from dolma_tools.tokenize.encode import EncodingSettings, encoder_for
from dolma_tools.tokenize.plan import TokenizePlan, fingerprint, plan_groups, ring_records, rng_for
from dolma_tools.tokenize.shards import MANIFEST_NAME, build_manifest
from dolma_tools.tokenize.tokenizers import (
    check_eos,
    check_token_id,
    choose_dtype,
    known_special_ids,
    padded_vocab_size,
    resolve_tokenizer,
    special_tokens,
    tokenizer_from_resolved,
    tokenizer_json,
    vocab_size,
)
from dolma_tools.tokenize.writer import DocMeta, GroupShardWriter, ShardInfo

log = logging.getLogger("dolma_tools.tokenize")

MARKER_DIR = ".tokens-groups"
SHUFFLE_STREAM = 1
RING_STREAM = 2


@dataclass(frozen=True)
class TokenizeJob:
    """What every group task needs; pickled once and shared by all tasks."""

    destination: str
    plan: TokenizePlan
    encoding: EncodingSettings
    max_size: int
    batch_size: int
    ring_size: int
    sample_ring_prop: bool
    seed: int
    text_field: str
    id_field: str | None
    id_field_type: str
    strict: bool
    parallel_tokenizer: bool
    settings_fingerprint: str

    def marker_path(self, group: int) -> str:
        return f"{self.destination}/{MARKER_DIR}/{self.plan.group_prefix(group)}group.json"

    def group_fingerprint(self, group: int) -> str:
        return fingerprint([self.settings_fingerprint, list(self.plan.groups[group].files)])


# ----------------------------------------------------------------------------------------------
# Settings resolved in the driver


@dataclass(frozen=True)
class ResolvedSettings:
    encoding: EncodingSettings
    pad_token_id: int | None
    vocab_size: int
    special_tokens: dict[str, int]


def resolve_settings(cfg: TokensConfig) -> ResolvedSettings:
    """Tokenizer, ids and dtype, validated before any work starts (a mistake is one UserError)."""
    tcfg = cfg.tokenizer
    name = tcfg.name_or_path
    deprecated_eos = None
    if cfg.tokenizer_name_or_path:
        log.warning("`tokenizer_name_or_path` is deprecated: use `tokenizer.name_or_path`")
        name = cfg.tokenizer_name_or_path
    resolved = resolve_tokenizer(name)
    tok = tokenizer_from_resolved(resolved)
    size = vocab_size(tok)
    if cfg.tokenizer_name_or_path:
        deprecated_eos = size - 1  # Dolma's rule for the deprecated key
    known = known_special_ids(resolved.path, tok)
    label = resolved.given
    eos = tcfg.eos_token_id if tcfg.eos_token_id is not None else (
        deprecated_eos if deprecated_eos is not None else known.eos)
    bos = tcfg.bos_token_id
    if eos is None and bos is None:
        raise UserError(f"{label} has no end-of-text token that dolma-tools recognises: set "
                        f"--tokenizer.eos_token_id (or --tokenizer.bos_token_id) to separate documents")
    if eos is not None:
        check_eos(tok, eos, label, expected=known.eos)
    if bos is not None:
        check_token_id(tok, bos, "tokenizer.bos_token_id", label)
    pad = tcfg.pad_token_id if tcfg.pad_token_id is not None else (known.pad if known.pad is not None else eos)
    if pad is not None:
        check_token_id(tok, pad, "tokenizer.pad_token_id", label)
    if not tcfg.fast:
        log.warning("tokenizer.fast=false is ignored: the `tokenizers` (fast) tokenizer is always used")
    if cfg.max_size < 2:
        raise UserError(f"max_size must be at least 2 tokens, got {cfg.max_size}")
    if cfg.batch_size < 1 or cfg.ring_size < 1:
        raise UserError("batch_size and ring_size must be at least 1")
    if cfg.files_per_process is not None and cfg.files_per_process < 1:
        raise UserError(f"files_per_process must be at least 1, got {cfg.files_per_process}")
    if cfg.fields.text_field_type not in ("str", "string"):
        raise UserError(f"fields.text_field_type must be str, got {cfg.fields.text_field_type!r}")
    if cfg.fields.id_field_type not in ("str", "string", "int", "integer"):
        raise UserError(f"fields.id_field_type must be str or int, got {cfg.fields.id_field_type!r}")
    refresh = DEFAULT_REFRESH if tcfg.refresh is None else max(0, tcfg.refresh)
    encoding = EncodingSettings(
        tokenizer=resolved, eos_token_id=eos, bos_token_id=bos,
        dtype=choose_dtype(cfg.dtype, size, label),
        encode_special_tokens=tcfg.encode_special_tokens,
        segment_before_tokenization=tcfg.segment_before_tokenization, refresh=refresh,
        ascii_fast_path=tcfg.ascii_fast_path, tokenizer_json=tokenizer_json(resolved))
    return ResolvedSettings(encoding=encoding, pad_token_id=pad, vocab_size=size,
                            special_tokens=special_tokens(tok))


# ----------------------------------------------------------------------------------------------
# One group


def _field(record: dict, dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _documents(job: TokenizeJob, group: int, result: FileResult
               ) -> Iterator[tuple[str, DocMeta]]:
    """(stripped text, meta) for each usable document of the group, in ring order."""
    files = job.plan.groups[group].files
    rng = rng_for(job.seed, group, RING_STREAM) if job.sample_ring_prop else None
    path_hashes: dict[str, str] = {}
    for path, line, record in ring_records(files, job.ring_size, rng):
        if isinstance(record, BadLine):
            result.bad_line(record, job.strict)
            continue
        text = _field(record, job.text_field)
        if not isinstance(text, str):
            reason = f"missing `{job.text_field}`" if text is None else \
                f"`{job.text_field}` is {type(text).__name__}, not a string"
            result.bad_line(BadLine(path, line, reason), job.strict)
            continue
        text = text.strip()
        if not text:
            result.add("empty_documents")
            continue
        if job.id_field is None:
            digest = path_hashes.get(path) or path_hashes.setdefault(
                path, hashlib.sha256(path.encode("utf-8")).hexdigest())
            doc_id = f"{digest}-{line}"
        else:
            raw_id = _field(record, job.id_field)
            if raw_id is None or isinstance(raw_id, (bool, dict, list)):
                reason = f"missing `{job.id_field}`" if raw_id is None else \
                    f"`{job.id_field}` is {type(raw_id).__name__}, not a string"
                result.bad_line(BadLine(path, line, reason), job.strict)
                continue
            doc_id = raw_id if isinstance(raw_id, str) else str(raw_id)
        yield text, DocMeta(doc_id, path, line)


def _batches(items: Iterator[tuple[str, DocMeta]], size: int) -> Iterator[list[tuple[str, DocMeta]]]:
    batch: list[tuple[str, DocMeta]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _remove_stale_shards(job: TokenizeJob, group: int) -> None:
    """Shards a previous (failed or different) run left for this group would mix with ours."""
    if is_remote(job.destination):
        return
    pattern = os.path.join(local_path(job.destination), glob.escape(job.plan.group_prefix(group)) + "[0-9]*.*")
    for path in glob.glob(pattern):
        if path.endswith((".npy", ".csv.gz")):
            os.remove(path)


def tokenize_group(job: TokenizeJob, key: str) -> FileResult:
    group = int(key.rsplit("-", 1)[-1])
    result = FileResult(path=key)
    cpu_start = time.process_time()
    encoder = encoder_for(job.encoding, job.parallel_tokenizer)
    shuffle_rng = rng_for(job.seed, group, SHUFFLE_STREAM)
    _remove_stale_shards(job, group)
    writer = GroupShardWriter(job.destination, functools.partial(job.plan.shard_stem, group), job.max_size)
    documents = tokens = 0
    try:
        itemsize = np.dtype(job.encoding.dtype).itemsize
        for batch in _batches(_documents(job, group, result), job.batch_size):
            chunks = encoder.encode_chunks([text for text, _ in batch])
            order = [int(i) for i in shuffle_rng.permutation(len(batch)) if chunks[i]]
            shuffled = np.frombuffer(b"".join([chunks[i] for i in order]), dtype=job.encoding.dtype)
            lengths = [len(chunks[i]) // itemsize for i in order]
            writer.write_batch(shuffled, lengths, [batch[i][1] for i in order])
            documents += len(order)
            tokens += len(shuffled)
            result.add("empty_encodings", len(batch) - len(order))
        shards = writer.close()
    except BaseException:
        writer.discard()
        raise
    result.documents = documents
    result.add("tokens", tokens)
    result.add("shards", len(shards))
    result.add("split_documents", writer.split_documents)
    result.add("worker_cpu_seconds", round(time.process_time() - cpu_start, 3))
    marker = {"fingerprint": job.group_fingerprint(group), "group": group,
              "files": list(job.plan.groups[group].files), "documents": documents, "tokens": tokens,
              "shards": [s.to_dict() for s in shards]}
    with AtomicWriter(job.marker_path(group), compression="") as out:
        out.write(orjson.dumps(marker, option=orjson.OPT_INDENT_2))
    return result


def read_marker(job: TokenizeJob, group: int) -> dict | None:
    path = job.marker_path(group)
    if not exists(path):
        return None
    try:
        with open_read(path, compression="") as fh:
            marker = orjson.loads(fh.read())
    except (OSError, orjson.JSONDecodeError):
        return None
    if marker.get("fingerprint") != job.group_fingerprint(group):
        return None
    return marker


# ----------------------------------------------------------------------------------------------
# The stage


def make_job(cfg: TokensConfig, settings: ResolvedSettings, files: list[str]) -> TokenizeJob:
    plan = plan_groups(files, cfg.seed, cfg.files_per_process)
    enc = settings.encoding
    settings_fp = fingerprint({
        "tokenizer_sha256": enc.tokenizer.sha256, "eos": enc.eos_token_id, "bos": enc.bos_token_id,
        "dtype": enc.dtype, "encode_special_tokens": enc.encode_special_tokens,
        "segment": enc.segment_before_tokenization, "max_size": cfg.max_size, "batch_size": cfg.batch_size,
        "ring_size": cfg.ring_size, "sample_ring_prop": cfg.sample_ring_prop, "seed": cfg.seed,
        "fields": [cfg.fields.text_field_name, cfg.fields.id_field_name], "groups": len(plan.groups),
        "format": 1,
    })
    parallel = bool(cfg.debug or cfg.processes == 1 or len(plan.groups) == 1)
    return TokenizeJob(
        destination=cfg.destination.rstrip("/"), plan=plan, encoding=enc, max_size=cfg.max_size,
        batch_size=cfg.batch_size, ring_size=cfg.ring_size, sample_ring_prop=cfg.sample_ring_prop,
        seed=cfg.seed, text_field=cfg.fields.text_field_name,
        id_field=None if cfg.fields.id_field_name in (None, "", "null", "None") else cfg.fields.id_field_name,
        id_field_type=cfg.fields.id_field_type, strict=cfg.strict, parallel_tokenizer=parallel,
        settings_fingerprint=settings_fp)


def run_tokens(cfg: TokensConfig, progress: bool = True) -> RunSummary:
    settings = resolve_settings(cfg)
    files = expand_globs(cfg.documents)
    job = make_job(cfg, settings, files)
    # Largest groups first, so the last tasks to finish are short ones (the order of the tasks
    # does not change what they write).
    sizes = {g.index: sum(_local_size(p) for p in g.files) for g in job.plan.groups}
    keys = [f"group-{g}" for g in sorted(sizes, key=lambda g: (-sizes[g], g))]
    summary = run_files(
        "tokens", keys, functools.partial(tokenize_group, job), cfg,
        is_done=lambda key: read_marker(job, int(key.rsplit("-", 1)[-1])) is not None,
        summary_path=f"{job.destination}/.summary-tokens.json", progress=progress,
        output_root=job.destination)  # writable check, one run at a time, stale temporaries removed
    markers = []
    for group in job.plan.groups:
        marker = read_marker(job, group.index)
        if marker is None:  # pragma: no cover - run_files raises before this
            raise UserError(f"tokens: group {group.index} did not finish; re-run to resume")
        markers.append(marker)
    shards = [ShardInfo(**s) for m in markers for s in m["shards"]]
    manifest = build_manifest(
        tokenizer=cfg.tokenizer_name_or_path or cfg.tokenizer.name_or_path,
        tokenizer_sha256=settings.encoding.tokenizer.sha256, vocab_size=settings.vocab_size,
        padded_vocab_size=padded_vocab_size(settings.vocab_size),
        eos_token_id=settings.encoding.eos_token_id, bos_token_id=settings.encoding.bos_token_id,
        pad_token_id=settings.pad_token_id, special_tokens=settings.special_tokens,
        dtype=settings.encoding.dtype, seed=cfg.seed,
        total_documents=sum(m["documents"] for m in markers), shards=shards)
    with AtomicWriter(f"{job.destination}/{MANIFEST_NAME}", compression="") as out:
        out.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    _warn_unlisted(job, shards)
    return summary


def _local_size(path: str) -> int:
    if is_remote(path):
        return 0
    try:
        return os.path.getsize(local_path(path))
    except OSError:
        return 0


def _warn_unlisted(job: TokenizeJob, shards: list[ShardInfo]) -> None:
    if is_remote(job.destination):
        return
    listed = {s.path for s in shards}
    extra = sorted(os.path.basename(p) for p in glob.glob(os.path.join(local_path(job.destination), "part-*.npy"))
                   if os.path.basename(p) not in listed)
    if extra:
        log.warning("%d shard(s) in %s are not from this run and not in %s (e.g. %s): remove them "
                    "before training on a glob", len(extra), job.destination, MANIFEST_NAME, extra[0])
