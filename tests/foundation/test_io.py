"""Document I/O: every compression and Parquet round trip, atomic writes, bad input, globbing."""

from __future__ import annotations

import gzip
import os

import pytest
import zstandard

from dolma_tools.errors import UserError
from dolma_tools.io import (
    AtomicWriter,
    BadLine,
    JsonlWriter,
    attribute_path,
    expand_globs,
    iter_documents,
    iter_json_records,
    write_parquet,
)
from dolma_tools.io.files import remove_stale_temporaries

DOCS = [
    {"id": "a", "text": "Hello wörld\nsecond line", "source": "s", "metadata": {"url": "http://x.org"}},
    {"id": "b", "text": "emoji 🎉 and CJK 漢字", "source": "s"},
    {"id": "c", "text": "", "source": "t"},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".json.gz", ".jsonl.zst", ".json.zstd"])
def test_jsonl_round_trip_every_compression(tmp_path, suffix):
    path = str(tmp_path / f"docs{suffix}")
    with JsonlWriter(path) as out:
        for doc in DOCS:
            out.write_record(doc)
    raw = open(path, "rb").read()
    if suffix.endswith(".gz"):
        assert raw[:2] == b"\x1f\x8b"
    elif "zst" in suffix:
        assert raw[:4] == b"\x28\xb5\x2f\xfd"
    else:
        assert raw.startswith(b'{"id":"a"')
    assert [doc for _, doc in iter_documents(path)] == DOCS
    assert [line for line, _ in iter_documents(path)] == [1, 2, 3]


def test_parquet_round_trip(tmp_path):
    path = str(tmp_path / "docs.parquet")
    rows = [{"id": d["id"], "text": d["text"], "source": d["source"]} for d in DOCS]
    write_parquet(path, rows)
    assert [doc for _, doc in iter_documents(path)] == rows


def test_atomic_write_publishes_only_on_success(tmp_path):
    path = tmp_path / "out" / "a.jsonl.gz"
    with pytest.raises(RuntimeError):
        with JsonlWriter(str(path)) as out:
            out.write_record({"id": "x"})
            raise RuntimeError("killed mid-write")
    assert not path.exists()
    assert os.listdir(path.parent) == []          # the temporary is removed too
    writer = AtomicWriter(str(path))
    writer.write(b"partial")
    assert not path.exists()                      # invisible until commit
    assert len(os.listdir(path.parent)) == 1
    writer.commit()
    assert gzip.decompress(path.read_bytes()) == b"partial"


def test_stale_temporaries_are_cleaned(tmp_path):
    (tmp_path / "x.jsonl.gz.tmp-abc123.tmp").write_bytes(b"junk")
    (tmp_path / "keep.jsonl.gz").write_bytes(b"")
    assert remove_stale_temporaries(str(tmp_path)) == 1
    assert os.listdir(tmp_path) == ["keep.jsonl.gz"]


def _records(path):
    return [(line, str(rec) if isinstance(rec, BadLine) else rec["id"]) for line, rec in iter_documents(path)]


def test_bad_lines_are_reported_with_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"id": "ok1", "text": "fine"}\n'
        b'{"id": "broken", "text": \n'            # malformed JSON
        b'\n'                                      # blank: ignored, not an error
        b'{"id": "utf", "text": "\xff\xfe"}\n'     # invalid UTF-8
        b'{"text": "no id"}\n'
        b'{"id": "no-text"}\n'
        b'{"id": "num", "text": 5}\n'
        b'[1, 2]\n'
        b'{"id": 7, "text": "numeric ids are accepted as strings"}\n'
        b'{"id": "ok2", "text": "fine too"}')     # no trailing newline
    p = str(path)
    assert _records(p) == [
        (1, "ok1"),
        (2, f"{p}:2: malformed JSON (unexpected end of data: line 1 column 26 (char 25))"),
        (4, f"{p}:4: invalid UTF-8"),
        (5, f"{p}:5: missing `id`"),
        (6, f"{p}:6: missing `text`"),
        (7, f"{p}:7: `text` is int, not a string"),
        (8, f"{p}:8: expected a JSON object, got list"),
        (9, "7"),
        (10, "ok2"),
    ]


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_truncated_compressed_file_keeps_good_lines_and_reports(tmp_path, suffix):
    lines = b"".join(b'{"id": "%d", "text": "%s"}\n' % (i, b"word " * 50) for i in range(2000))
    blob = gzip.compress(lines) if suffix.endswith(".gz") else zstandard.ZstdCompressor().compress(lines)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(blob[: len(blob) // 2])
    records = list(iter_documents(str(path)))
    good = [r for _, r in records if not isinstance(r, BadLine)]
    bad = [r for _, r in records if isinstance(r, BadLine)]
    assert 0 < len(good) < 2000
    assert [g["id"] for g in good] == [str(i) for i in range(len(good))]
    assert len(bad) == 1 and "truncated" in bad[0].reason
    assert bad[0].path == str(path)


def test_attribute_records_are_not_validated_as_documents(tmp_path):
    path = tmp_path / "attrs.jsonl"
    path.write_text('{"id": null, "attributes": {}}\n')
    assert list(iter_json_records(str(path))) == [(1, {"id": None, "attributes": {}})]


def test_globs_directories_and_errors(tmp_path):
    root = tmp_path / "ds" / "documents"
    (root / "a" / "b").mkdir(parents=True)
    for rel in ("x.jsonl.gz", "a/y.jsonl.gz", "a/b/z.jsonl.gz", ".hidden.jsonl.gz", "a/w.jsonl.gz.tmp-1.tmp"):
        (root / rel).write_bytes(b"")
    assert expand_globs([str(root / "**" / "*.jsonl.gz")]) == sorted(
        str(root / rel) for rel in ("x.jsonl.gz", "a/y.jsonl.gz", "a/b/z.jsonl.gz"))
    assert expand_globs([str(root)]) == [str(root / "x.jsonl.gz")]     # a directory means dir/*
    with pytest.raises(UserError, match="no files match documents pattern"):
        expand_globs([str(root / "*.parquet")])
    with pytest.raises(UserError, match="no documents given"):
        expand_globs([])


def test_attribute_path_mirrors_documents():
    assert attribute_path("/d/documents/web/x.jsonl.gz", "exp") == "/d/attributes/exp/web/x.jsonl.gz"
    assert attribute_path("s3://b/d/documents/x.json.zst", "e") == "s3://b/d/attributes/e/x.json.zst"
    assert attribute_path("documents/x.parquet", "e") == "attributes/e/x.jsonl.gz"
    with pytest.raises(UserError, match="no `documents/` path component"):
        attribute_path("/d/docs/x.jsonl.gz", "e")


@pytest.mark.parametrize("name, compress", [
    ("plain-named.jsonl.gz", lambda b: b),                                   # not gzip at all
    ("zstd-named.jsonl.gz", lambda b: zstandard.ZstdCompressor().compress(b)),
    ("gzip-named.jsonl", gzip.compress),
])
def test_compression_is_read_from_the_bytes_when_the_name_is_wrong(tmp_path, name, compress):
    """Every record of a misnamed file is read (it used to be one 'corrupt data' line for all)."""
    path = tmp_path / name
    path.write_bytes(compress(b'{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n'))
    assert [(line, doc["id"]) for line, doc in iter_documents(str(path))] == [(1, "a"), (2, "b")]


def test_byte_order_mark_and_null_fields(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a", "text": "x"}\n{"id": "b", "text": null}\n{"id": null, "text": "z"}\n')
    records = list(iter_documents(str(path)))
    assert records[0] == (1, {"id": "a", "text": "x"})
    assert [str(r) for _, r in records[1:]] == [f"{path}:2: `text` is null", f"{path}:3: `id` is null"]


def test_corrupt_parquet_is_a_bad_record_naming_the_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    [(line, bad)] = list(iter_documents(str(path)))
    assert line == 1 and isinstance(bad, BadLine) and bad.path == str(path)
    assert bad.reason.startswith("unreadable Parquet data (")


def test_a_forked_process_makes_its_own_s3_client(monkeypatch):
    # the fork pools (`--executor local`) must not share the parent's pooled S3 connections
    import os

    from dolma_tools.io import s3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    parent = s3.s3_client()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports whether it got a client of its own
        os.write(write, b"1" if s3.s3_client() is not parent else b"0")
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert s3.s3_client() is parent  # the parent keeps its own
