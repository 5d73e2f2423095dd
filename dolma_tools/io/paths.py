"""Input discovery and the documents/ -> attributes/<name>/ path mirroring."""

from __future__ import annotations

import glob as _glob
import os
import re
from typing import Sequence

from dolma_tools.errors import UserError
from dolma_tools.io.files import TMP_MARKER, is_remote, local_path

DOCUMENT_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.zst", ".json.zst",
                     ".jsonl.zstd", ".json.zstd", ".parquet")


def has_wildcard(pattern: str) -> bool:
    return re.search(r"[*?\[]", pattern) is not None


def _is_hidden_or_temporary(path: str) -> bool:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name.startswith(".") or (TMP_MARKER in name and name.endswith(".tmp"))


def expand_one(pattern: str) -> list[str]:
    """Matches of one pattern: a glob (`**` included), a file, or a directory (meaning `dir/*`)."""
    if pattern.startswith("s3://"):
        from dolma_tools.io.s3 import glob_s3

        return [p for p in glob_s3(pattern) if not _is_hidden_or_temporary(p)]
    if is_remote(pattern):
        import fsspec

        protocol = pattern.split("://", 1)[0]
        fs = fsspec.filesystem(protocol)
        return sorted(f"{protocol}://{p}" for p in fs.glob(pattern))
    pattern = local_path(pattern)
    if not has_wildcard(pattern):
        if os.path.isdir(pattern):
            pattern = os.path.join(pattern, "*")
        elif os.path.isfile(pattern):
            return [pattern]
        else:
            return []
    return sorted(p for p in _glob.glob(pattern, recursive=True)
                  if os.path.isfile(p) and not _is_hidden_or_temporary(p))


def expand_globs(patterns: Sequence[str] | str, *, what: str = "documents") -> list[str]:
    """All files matched by `patterns`, sorted and de-duplicated.

    A pattern that matches nothing is a UserError before any work starts (Dolma only warns,
    then fails when all are empty; silently running on part of the input is worse).
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise UserError(f"no {what} given: pass --{what} PATTERN [PATTERN ...]")
    found: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        matches = expand_one(pattern)
        if not matches:
            raise UserError(f"no files match {what} pattern {pattern!r}")
        for path in matches:
            if path not in seen:
                seen.add(path)
                found.append(path)
    return found


def _split_at(path: str, component: str) -> tuple[str, str] | None:
    """Split `path` around the first path component equal to `component`."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if part == component and i < len(parts) - 1:
            return "/".join(parts[:i]), "/".join(parts[i + 1:])
    return None


def attribute_file_name(relative: str) -> str:
    """Attribute files are JSONL; Parquet documents get a `.jsonl.gz` attribute file."""
    if relative.endswith(".parquet"):
        return relative[: -len(".parquet")] + ".jsonl.gz"
    return relative


def attribute_path(document_path: str, attribute_name: str, document_dir: str = "documents") -> str:
    """`<base>/documents/<rel>` -> `<base>/attributes/<attribute_name>/<rel>`."""
    split = _split_at(document_path, document_dir)
    if split is None:
        raise UserError(
            f"cannot derive the attributes path of {document_path}: it has no `{document_dir}/` "
            f"path component (put documents under <dataset>/{document_dir}/ or pass --destination)")
    base, relative = split
    root = f"{base}/attributes" if base or document_path.startswith("/") else "attributes"
    return f"{root}/{attribute_name}/{attribute_file_name(relative)}"
