"""`shuffle: false`, Dolma's strict filter mode (PR #231): one output per input, in order.

The expected names, codecs and contents were observed with Dolma 1.2.1 on the same inputs
(`<output.path>/documents/<input path after documents/>`, order kept, an emptied input still
gets its file, `max_size_in_bytes` ignored); where we differ (the extension follows
`compression.output`) the test says so.
"""

import gzip
import json
import os
from pathlib import Path

import pytest
import zstandard

from dolma_tools.config import from_dict
from dolma_tools.errors import UserError
from dolma_tools.mixers.config import MixConfig
from dolma_tools.mixers.runner import run_mix

GZIP_MAGIC, ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"


def mix(streams: list[dict], **top) -> dict:
    cfg = from_dict(MixConfig, {"streams": streams, "debug": True, "shuffle": False, **top})
    return run_mix(cfg, progress=False)


def encode(lines: list[dict], codec: str) -> bytes:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    if codec == "gz":
        return gzip.compress(data)
    if codec == "zst":
        return zstandard.ZstdCompressor().compress(data)
    return data


def decode(path: Path) -> list[dict]:
    data = path.read_bytes()
    if data[:2] == GZIP_MAGIC:
        data = gzip.decompress(data)
    elif data[:4] == ZSTD_MAGIC:
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return [json.loads(line) for line in data.splitlines() if line.strip()]


# (relative path, codec, document numbers): the corpus used to observe Dolma 1.2.1
FILES = [("a.jsonl", "", [1, 2, 3, 4]), ("b.jsonl.zst", "zst", [5, 6, 7, 8]),
         ("d.jsonl.gz", "gz", [3, 4, 5, 6]), ("x/y/c.json.gz", "gz", [1, 2])]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    for relative, codec, numbers in FILES:
        docs = [{"id": f"d{i}", "text": "x" * (100 * i), "source": "s"} for i in numbers]
        attrs = [{"id": d["id"], "attributes": {"e__len": [[0, len(d["text"]), len(d["text"])]]}} for d in docs]
        for tree, lines in (("documents", docs), ("attributes/e", attrs)):
            path = root / tree / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode(lines, codec))
    return root


def stream(corpus: Path, out: Path, **extra) -> dict:
    return {"name": "cc", "documents": [f"{corpus}/documents/*.*", f"{corpus}/documents/x/y/*"],
            "attributes": ["e"], "output": {"path": str(out), "max_size_in_bytes": 100},
            "filter": {"exclude": ["$.attributes[?(@.e__len[0][2] < 250)]"]}, **extra}


def tree(out: Path) -> dict[str, tuple[bytes, list[str]]]:
    """relative path -> (magic bytes, kept ids) for every output below documents/."""
    return {p.relative_to(out).as_posix(): (p.read_bytes()[:4], [d["id"] for d in decode(p)])
            for p in sorted((out / "documents").rglob("*")) if p.is_file()}


def test_one_output_per_input_in_order_as_dolma(corpus, tmp_path):
    out = tmp_path / "out"
    report = mix([stream(corpus, out)])
    # Dolma 1.2.1: the same four files, the codec of each input's name, an empty gzip for the input
    # whose documents were all removed, and max_size_in_bytes (100) ignored
    assert tree(out) == {
        "documents/a.jsonl": (b'{"at', ["d3", "d4"]),
        "documents/b.jsonl.zst": (ZSTD_MAGIC, ["d5", "d6", "d7", "d8"]),
        "documents/d.jsonl.gz": (GZIP_MAGIC[:2] + b"\x08\x00", ["d3", "d4", "d5", "d6"]),
        "documents/x/y/c.json.gz": (GZIP_MAGIC[:2] + b"\x08\x00", []),
    }
    assert [Path(p).relative_to(out).as_posix() for p in report["streams"]["cc"]["shards"]] == \
        ["documents/a.jsonl", "documents/b.jsonl.zst", "documents/d.jsonl.gz", "documents/x/y/c.json.gz"]
    first = decode(out / "documents" / "a.jsonl")[0]
    assert first == {"attributes": {"e__len": [[0, 300, 300]]}, "id": "d3",
                     "metadata": {"provenance": "a.jsonl:3"}, "source": "s", "text": "x" * 300}
    assert (out / "documents" / "a.jsonl").read_bytes().decode().splitlines()[0] == \
        json.dumps(first, separators=(",", ":"))  # Dolma's bytes: sorted keys, compact
    assert not list(out.glob("cc-*")) and not list(out.glob(".staging-*"))


@pytest.mark.parametrize("codec, names", [
    ("zst", ["a.jsonl.zst", "b.jsonl.zst", "d.jsonl.zst", "x/y/c.json.zst"]),
    ("gz", ["a.jsonl.gz", "b.jsonl.gz", "d.jsonl.gz", "x/y/c.json.gz"]),
    ("", ["a.jsonl", "b.jsonl", "d.jsonl", "x/y/c.json"]),
])
def test_compression_output_sets_the_codec_and_the_extension(corpus, tmp_path, codec, names):
    """Dolma 1.2.1 keeps the input's name (zstd in `d.jsonl.gz`); ours names the codec it wrote."""
    out = tmp_path / "out"
    mix([stream(corpus, out, compression={"output": codec})])
    got = tree(out)
    assert list(got) == [f"documents/{n}" for n in names]
    magic = {"zst": ZSTD_MAGIC, "gz": GZIP_MAGIC}.get(codec)
    assert all(head.startswith(magic) for head, _ in got.values() if magic and head)
    assert [ids for _, ids in got.values()] == [["d3", "d4"], ["d5", "d6", "d7", "d8"], ["d3", "d4", "d5", "d6"], []]
    if codec == "":
        assert (out / "documents" / "x" / "y" / "c.json").read_bytes() == b""  # as Dolma


def test_parquet_names(corpus, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    mix([stream(corpus, out, output={"path": str(out), "format": "parquet"})])
    files = sorted(p.relative_to(out).as_posix() for p in (out / "documents").rglob("*.parquet"))
    assert files == ["documents/a.parquet", "documents/b.parquet", "documents/d.parquet", "documents/x/y/c.parquet"]
    assert pq.read_table(out / "documents" / "d.parquet").column("id").to_pylist() == ["d3", "d4", "d5", "d6"]
    assert pq.read_table(out / "documents" / "x" / "y" / "c.parquet").num_rows == 0
    # a Parquet input written as JSONL keeps its name with .jsonl.gz
    again = tmp_path / "again"
    mix([{"name": "p", "documents": [str(out / "documents" / "d.parquet")], "output": {"path": str(again)}}])
    assert [d["id"] for d in decode(again / "documents" / "d.jsonl.gz")] == ["d3", "d4", "d5", "d6"]


def test_same_bytes_whatever_the_workers_and_resume_by_outputs(corpus, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    mix([stream(corpus, one)])
    cfg = from_dict(MixConfig, {"streams": [stream(corpus, two)], "shuffle": False, "executor": "local",
                                "processes": 2})
    run_mix(cfg, progress=False)
    files = sorted(p.relative_to(one) for p in (one / "documents").rglob("*") if p.is_file())
    assert [(one / f).read_bytes() for f in files] == [(two / f).read_bytes() for f in files]
    # a re-run with everything in place writes nothing; a deleted output is written again
    stamps = {f: (one / f).stat().st_mtime_ns for f in files}
    mix([stream(corpus, one)])
    assert {f: (one / f).stat().st_mtime_ns for f in files} == stamps
    (one / "documents" / "d.jsonl.gz").unlink()
    mix([stream(corpus, one)])
    assert [d["id"] for d in decode(one / "documents" / "d.jsonl.gz")] == ["d3", "d4", "d5", "d6"]


def test_an_interrupted_run_resumes_file_by_file(corpus, tmp_path):
    out = tmp_path / "out"
    bad = corpus / "attributes" / "e" / "d.jsonl.gz"
    good = bad.read_bytes()
    bad.write_bytes(encode([{"id": "wrong", "attributes": {}}], "gz"))  # a fatal id mismatch
    with pytest.raises(UserError, match="mismatched ids"):
        mix([stream(corpus, out)])
    done = {p.name for p in (out / ".staging-cc").glob("*.done.json")}
    written = sorted(p.relative_to(out).as_posix() for p in (out / "documents").rglob("*") if p.is_file())
    assert "documents/d.jsonl.gz" not in written and len(done) == len(written) == 2  # a.jsonl, b.jsonl.zst
    stamps = {f: (out / f).stat().st_mtime_ns for f in written}
    bad.write_bytes(good)
    mix([stream(corpus, out)])
    assert {f: (out / f).stat().st_mtime_ns for f in written} == stamps  # not redone
    assert tree(out)["documents/d.jsonl.gz"][1] == ["d3", "d4", "d5", "d6"]
    assert not list(out.glob(".staging-*")) and not list(out.rglob("*.tmp"))


def test_switching_shuffle_removes_the_other_layout(corpus, tmp_path):
    out = tmp_path / "out"
    mix([stream(corpus, out)], shuffle=True)
    shards = sorted(p.name for p in out.glob("cc-*"))
    assert shards[0] == "cc-0000.jsonl.gz" and len(shards) > 1  # shuffle: true honours max_size_in_bytes
    mix([stream(corpus, out)])
    assert not list(out.glob("cc-*")) and len(tree(out)) == 4
    mix([stream(corpus, out)], shuffle=True)
    assert sorted(p.name for p in out.glob("cc-*")) == shards
    assert not [p for p in (out / "documents").rglob("*") if p.is_file()]


def test_sampling_keeps_order_per_file(corpus, tmp_path):
    out = tmp_path / "out"
    report = mix([stream(corpus, out, upsample=2)])
    assert tree(out)["documents/a.jsonl"][1] == ["d3", "d3", "d4", "d4"]
    assert report["streams"]["cc"]["documents_out"] == 20


def test_two_inputs_with_the_same_output_are_refused(corpus, tmp_path):
    other = tmp_path / "other" / "documents"
    other.mkdir(parents=True)
    (other / "a.jsonl").write_bytes((corpus / "documents" / "a.jsonl").read_bytes())
    out = tmp_path / "out"
    with pytest.raises(UserError, match=r"writes both .*a\.jsonl and .*a\.jsonl to .*out/documents/a\.jsonl"):
        mix([{"name": "one", "documents": [str(corpus / "documents" / "a.jsonl")], "output": {"path": str(out)}},
             {"name": "two", "documents": [str(other / "a.jsonl")], "output": {"path": str(out)}}])
    assert not out.exists() or not list(out.rglob("*.jsonl"))


def test_an_input_outside_documents_keeps_its_whole_path(tmp_path):
    """Dolma 1.2.1 writes /data/x.jsonl.gz to <output.path>/documents/data/x.jsonl.gz."""
    src = tmp_path / "plain" / "x.jsonl.gz"
    src.parent.mkdir()
    src.write_bytes(encode([{"id": "1", "text": "t"}], "gz"))
    out = tmp_path / "out"
    mix([{"name": "p", "documents": [str(src)], "output": {"path": str(out)}}])
    target = out / "documents" / os.path.abspath(src).lstrip("/")
    assert [d["id"] for d in decode(target)] == ["1"]


@pytest.mark.parametrize("shuffle", [False, True])
def test_files_staged_by_an_interrupted_run_are_redone_when_the_config_changed(corpus, tmp_path, shuffle):
    out = tmp_path / "out"
    bad = corpus / "attributes" / "e" / "d.jsonl.gz"
    good = bad.read_bytes()
    bad.write_bytes(encode([{"id": "wrong", "attributes": {}}], "gz"))
    with pytest.raises(UserError, match="mismatched ids"):
        mix([stream(corpus, out)], shuffle=shuffle)
    assert len(list((out / ".staging-cc").glob("*.done.json"))) == 2
    bad.write_bytes(good)
    report = mix([stream(corpus, out, filter={"exclude": ["$.attributes[?(@.e__len[0][2] < 450)]"]})],
                 shuffle=shuffle)
    ids = [d["id"] for p in report["streams"]["cc"]["shards"] for d in decode(Path(p))]
    assert sorted(ids) == ["d5", "d5", "d6", "d6", "d7", "d8"]
