"""Hostile and odd input through `dolma tag`: each case states what happens, and nothing else is lost."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import zstandard

from dolma_tools.taggers.runner import TagConfig, run_tag


def tag_dir(docs: Path, **kwargs):
    cfg = TagConfig(documents=[str(docs / "*")], taggers=["char_length_v1"], experiment="e", debug=True, **kwargs)
    return run_tag(cfg, progress=False)


def attrs(root: Path, name: str) -> list[dict]:
    from dolma_tools.io import iter_json_records

    return [record for _, record in iter_json_records(str(root.parent / "attributes" / "e" / name))]


def good_line(doc_id: str, text: str) -> bytes:
    return json.dumps({"id": doc_id, "text": text}).encode() + b"\n"


def test_each_odd_input_has_a_stated_outcome(tmp_path: Path):
    docs = tmp_path / "documents"
    docs.mkdir()
    big = "word " * (10 * 1024 * 1024)                                       # a 50 MB single document
    (docs / "big.jsonl").write_bytes(good_line("big", big))
    (docs / "empty.jsonl").write_bytes(b"")                                    # empty file: 0 records
    (docs / "blank.jsonl").write_bytes(b"\n\n  \n\t\n")                        # only blank lines: 0 records
    (docs / "mixed.jsonl").write_bytes(
        good_line("nul", "a\u0000b")                                           # escaped NUL: kept as text
        + b'{"id": "rawnul", "text": "a\x00b"}\n'                              # raw NUL byte: invalid JSON, skipped
        + b'{"id": "sur", "text": "x\\ud800y"}\n'                              # lone surrogate: skipped
        + b'{"id": "bad-utf8", "text": "\xc3\x28"}\n'                          # invalid UTF-8: skipped
        + good_line("dup", "first")                                            # duplicate ids: both kept
        + good_line("dup", "second copy")
        + b'{"id": "list", "text": ["not", "a", "string"]}\n'                  # text not a string: skipped
        + good_line("emoji", "🎉🎉 ok"))
    payload = b"".join(good_line(str(i), "some text " * 40) for i in range(3000))
    (docs / "cut.jsonl.gz").write_bytes(gzip.compress(payload)[:-100])      # truncated gzip
    (docs / "cut.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(payload)[:-100])

    summary = tag_dir(docs)
    assert summary.files == 6
    # skipped: raw NUL, surrogate, bad UTF-8, list text, and one damaged tail in each truncated file
    assert summary.skipped_lines == 6
    reasons = "\n".join(summary.errors)
    for expected in ("mixed.jsonl:2: malformed JSON", "mixed.jsonl:3: lone surrogate", "mixed.jsonl:4: invalid UTF-8",
                     "mixed.jsonl:7: `text` is list, not a string", "cut.jsonl.gz:", "cut.jsonl.zst:"):
        assert expected in reasons

    assert attrs(docs, "big.jsonl")[0]["attributes"]["e__char_length_v1__length"] == [[0, len(big), float(len(big))]]
    assert attrs(docs, "empty.jsonl") == [] and attrs(docs, "blank.jsonl") == []
    mixed = attrs(docs, "mixed.jsonl")
    assert [m["id"] for m in mixed] == ["nul", None, None, None, "dup", "dup", None, "emoji"]
    assert mixed[0]["attributes"]["e__char_length_v1__length"][0][1] == 3        # NUL counts as one code point
    assert mixed[7]["attributes"]["e__char_length_v1__length"][0][1] == len("🎉🎉 ok")  # code points, not bytes
    for name in ("cut.jsonl.gz", "cut.jsonl.zst"):
        out = attrs(docs, name)
        kept = [o["id"] for o in out if o["id"] is not None]
        assert kept == [str(i) for i in range(len(kept))] and 2000 < len(kept) < 3000
        assert out[-1]["id"] is None                                         # the damage is one placeholder line
    assert summary.documents == 1 + 4 + sum(
        len([o for o in attrs(docs, n) if o["id"] is not None]) for n in ("cut.jsonl.gz", "cut.jsonl.zst"))
