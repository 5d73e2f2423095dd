"""`dolma mix` under hostile input, misaligned attribute files, a kill -9 mid-run and a concurrent run."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import zstandard

from dolma_tools.config import from_dict
from dolma_tools.errors import DataError, UserError
from dolma_tools.mixers.config import MixConfig
from dolma_tools.mixers.runner import run_mix
from tests.foundation.helpers import VENV_BIN, dolma, write_jsonl_gz


def mix(streams: list[dict], **top) -> dict:
    # shuffle: true with a one-document buffer: merged shards in input order
    cfg = from_dict(MixConfig, {"streams": streams, "debug": True, "shuffle_buffer": 1, **top})
    return run_mix(cfg, progress=False)


def read_shards(out: Path, name: str) -> list[dict]:
    docs = []
    for path in sorted(out.glob(f"{name}-*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            docs.extend(json.loads(line) for line in fh if line.strip())
    return docs


def shard_bytes(out: Path) -> dict[str, bytes]:
    """Shards only: run summaries and done markers hold timings and absolute paths."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file() and not p.name.startswith(".")}


def leftovers(root: Path) -> list[str]:
    """Temporaries or staging a run should not leave behind."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if ".tmp" in p.name or p.name.startswith(".staging") or ".staging-" in str(p))


def good(doc_id: str, text: str = "fine text") -> bytes:
    return json.dumps({"id": doc_id, "text": text, "source": "s"}).encode() + b"\n"


# ---------------------------------------------------------------------------------------------
# Hostile input


def test_hostile_input_through_mix_is_counted_and_good_documents_all_come_out(tmp_path: Path):
    docs = tmp_path / "data" / "documents"
    docs.mkdir(parents=True)
    (docs / "mixed.jsonl").write_bytes(
        good("m1")
        + b"{not json\n"                                                  # malformed JSON
        + b'{"id": "t", "text": 42}\n'                                    # text not a string
        + b'{"id": "u", "text": "\xc3\x28"}\n'                            # invalid UTF-8
        + b'{"id": "v", "text": "x\\ud800y"}\n'                           # lone surrogate
        + b'{"id": "w", "text": "a\x00b"}\n'                              # raw NUL in a string
        + b"\n   \n"                                                      # blank lines: not records
        + good("m2", "nul \u0000 and emoji \U0001F389 and \u00e9")       # escaped NUL, emoji: kept
        + good("m2", "duplicate id, kept"))                               # duplicate ids: both kept
    (docs / "empty.jsonl").write_bytes(b"")
    (docs / "blank.jsonl.gz").write_bytes(gzip.compress(b"\n\n \n"))
    payload = b"".join(good(f"g{i}", "some text " * 30) for i in range(2000))
    (docs / "cut.jsonl.gz").write_bytes(gzip.compress(payload)[:-200])    # truncated gzip
    (docs / "cut.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(payload)[:-200])
    big = "word " * (10 * 1024 * 1024)                                    # a 50 MB document
    (docs / "big.jsonl").write_bytes(good("big", big))
    clean = tmp_path / "clean" / "documents"
    write_jsonl_gz(clean / "c.jsonl.gz", [{"id": f"c{i}", "text": f"clean {i}"} for i in range(50)])

    out = tmp_path / "out"
    report = mix([{"name": "hostile", "documents": [str(docs / "*")], "output": {"path": str(out)}},
                  {"name": "clean", "documents": [str(clean / "*.gz")], "output": {"path": str(out)}}])
    hostile = report["streams"]["hostile"]
    # 5 bad records in mixed.jsonl + one damaged tail per truncated file
    assert hostile["skipped_lines"] == 7
    errors = "\n".join(hostile["errors"])
    for expected in ("mixed.jsonl:2: malformed JSON", "mixed.jsonl:3: `text` is int, not a string",
                     "mixed.jsonl:4: invalid UTF-8", "mixed.jsonl:5: lone surrogate", "mixed.jsonl:6: malformed JSON",
                     "cut.jsonl.gz:", "cut.jsonl.zst:"):
        assert expected in errors, expected
    kept = read_shards(out, "hostile")
    ids = [d["id"] for d in kept]
    cut_ids = [i for i in ids if i.startswith("g")]
    assert cut_ids.count("g0") == 2                                       # one run of each truncated file
    assert 2 * 1000 < len(cut_ids) < 2 * 2000                             # everything before each cut
    assert [i for i in ids if not i.startswith("g")] == ["big", "m1", "m2", "m2"]
    by_line = {d["metadata"]["provenance"]: d for d in kept}
    assert by_line["big.jsonl:1"]["text"] == big
    assert by_line["mixed.jsonl:9"]["text"] == "nul \u0000 and emoji \U0001F389 and \u00e9"
    assert hostile["documents_in"] == hostile["documents_out"] == len(kept)
    assert [d["id"] for d in read_shards(out, "clean")] == [f"c{i}" for i in range(50)]   # other stream intact
    # provenance points at the physical line
    assert {d["id"]: d["metadata"]["provenance"] for d in kept if d["id"] in ("m1", "big")} == \
        {"m1": "mixed.jsonl:1", "big": "big.jsonl:1"}


def test_strict_mode_makes_the_first_bad_record_fatal_with_file_and_line(tmp_path: Path):
    docs = tmp_path / "documents"
    docs.mkdir()
    (docs / "a.jsonl").write_bytes(good("1") + b'{"id": "2", "text": ["no"]}\n' + good("3"))
    with pytest.raises(DataError, match=r"a\.jsonl:2: `text` is list, not a string"):
        mix([{"name": "s", "documents": [str(docs / "a.jsonl")], "output": {"path": str(tmp_path / "o")}}],
            strict=True)


# ---------------------------------------------------------------------------------------------
# Attribute files with fewer or more records than their documents


def _attr_corpus(root: Path) -> Path:
    docs = root / "documents"
    for name in ("a", "b", "c"):
        write_jsonl_gz(docs / f"{name}.jsonl.gz", [{"id": f"{name}{i}", "text": f"{name} text {i}"} for i in range(5)])
        write_jsonl_gz(root / "attributes" / "q" / f"{name}.jsonl.gz",
                       [{"id": f"{name}{i}", "attributes": {"q__len": [[0, 8, float(i)]]}} for i in range(5)])
    write_jsonl_gz(root / "other" / "documents" / "o.jsonl.gz", [{"id": f"o{i}", "text": "o"} for i in range(4)])
    return docs


def _attr_streams(root: Path, out: Path) -> list[dict]:
    return [{"name": "s", "documents": [str(root / "documents" / "*.jsonl.gz")], "attributes": ["q"],
             "output": {"path": str(out)}, "filter": {"exclude": ["$.attributes[?(@.q__len[0][2] >= 4)]"]}},
            {"name": "other", "documents": [str(root / "other" / "documents" / "*.gz")], "output": {"path": str(out)}}]


@pytest.mark.parametrize("damage, message", [
    ("fewer", r"attributes/q/b\.jsonl\.gz: attribute file has fewer records than .*b\.jsonl\.gz "
              r"\(none for document line 4\)"),
    ("more", r"attributes/q/b\.jsonl\.gz:6: attribute file has more records than .*b\.jsonl\.gz"),
])
def test_misaligned_attribute_file_is_a_clear_error_and_nothing_else_is_lost(tmp_path: Path, damage: str,
                                                                               message: str):
    root, clean_root = tmp_path / "run", tmp_path / "clean"
    _attr_corpus(root)
    _attr_corpus(clean_root)
    out, clean_out = tmp_path / "out", tmp_path / "clean_out"
    records = [{"id": f"b{i}", "attributes": {"q__len": [[0, 8, float(i)]]}} for i in range(5)]
    bad = records[:3] if damage == "fewer" else records + [{"id": "b5", "attributes": {}}]
    write_jsonl_gz(root / "attributes" / "q" / "b.jsonl.gz", bad)

    with pytest.raises(DataError, match=message):
        mix(_attr_streams(root, out), strict=True)   # without --strict: counted, mixed as Dolma does
    assert not list(out.glob("s-*")), "no shard is published from a failed stream"
    # the file processed before the damaged one is kept for the re-run (staged, with its manifest)
    assert len(list(out.glob(".staging-s/*.done.json"))) == 1

    write_jsonl_gz(root / "attributes" / "q" / "b.jsonl.gz", records)       # the user fixes the file
    report = mix(_attr_streams(root, out))
    mix(_attr_streams(clean_root, clean_out))
    assert shard_bytes(out) == shard_bytes(clean_out)
    assert [d["id"] for d in read_shards(out, "s")] == [f"{n}{i}" for n in "abc" for i in range(4)]
    assert report["streams"]["other"]["documents_out"] == 4
    assert leftovers(out) == []


def test_misaligned_attribute_file_through_the_cli_exits_non_zero_naming_it(tmp_path: Path):
    root = tmp_path / "run"
    _attr_corpus(root)
    write_jsonl_gz(root / "attributes" / "q" / "c.jsonl.gz", [{"id": "c0", "attributes": {}}])
    config = tmp_path / "mix.json"
    config.write_text(json.dumps({"streams": _attr_streams(root, tmp_path / "out"), "shuffle_buffer": 1}))
    result = dolma("mix", "-c", str(config), "--debug", "--strict")
    assert result.returncode != 0
    assert "attributes/q/c.jsonl.gz" in result.stderr and "fewer records" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------
# kill -9 of the whole run, then a re-run


def _big_corpus(root: Path, files: int = 16, docs: int = 1500) -> Path:
    documents = root / "documents"
    for f in range(files):
        write_jsonl_gz(documents / f"part-{f:03d}.jsonl.gz",
                       [{"id": f"{f}-{i}", "text": f"document {i} of file {f} " * (5 + i % 40), "source": "k"}
                        for i in range(docs)])
    return documents


def _mix_config(tmp: Path, documents: Path, out: Path) -> Path:
    config = tmp / f"{out.name}.json"
    config.write_text(json.dumps({"streams": [{
        "name": "k", "documents": [f"{documents}/*.jsonl.gz"], "output": {"path": str(out), "max_size_in_bytes": 20_000},
        "filter": {"syntax": "python", "exclude": ["len(text) < 150"]}}], "seed": 3, "shuffle": True,
        "processes": 1}))
    return config


@pytest.mark.parametrize("mode", [pytest.param("debug", id="in-process"),
                                  pytest.param("ray", id="ray", marks=pytest.mark.slow)])
def test_kill_minus_9_of_dolma_mix_then_rerun_gives_identical_shards(tmp_path: Path, mode: str):
    killed_docs = _big_corpus(tmp_path / "killed")
    clean_docs = _big_corpus(tmp_path / "clean")
    killed_out, clean_out = tmp_path / "killed_out", tmp_path / "clean_out"
    extra = ["--debug"] if mode == "debug" else []
    killed_cfg = _mix_config(tmp_path, killed_docs, killed_out)

    proc = subprocess.Popen([str(VENV_BIN / "dolma"), "mix", "-c", str(killed_cfg), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    staging = killed_out / ".staging-k"
    deadline = time.time() + 180
    while time.time() < deadline and len(list(staging.glob("*.done.json"))) < 3 and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)                   # the driver and any Ray workers, at once
    proc.wait()
    staged = len(list(staging.glob("*.done.json")))
    assert 3 <= staged < 16 and not (killed_out / ".mix-k.done.json").exists(), "the kill must land mid-run"

    rerun = dolma("mix", "-c", str(killed_cfg), *extra)
    assert rerun.returncode == 0, rerun.stderr
    assert dolma("mix", "-c", str(_mix_config(tmp_path, clean_docs, clean_out)), *extra).returncode == 0
    killed_shards, clean_shards = shard_bytes(killed_out), shard_bytes(clean_out)
    assert len(clean_shards) > 3
    assert killed_shards == clean_shards                   # byte-identical; no duplicate or partial shard
    assert leftovers(killed_out) == [] and leftovers(clean_out) == []
    summary = json.loads((killed_out / ".summary-mix.json").read_text())["streams"]["k"]
    assert summary["documents_in"] == 16 * 1500               # every document counted once


# ---------------------------------------------------------------------------------------------
# Concurrency


def test_second_mix_on_a_locked_destination_is_refused(tmp_path: Path):
    from dolma_tools.runtime.locks import destination_lock

    docs = tmp_path / "documents"
    write_jsonl_gz(docs / "a.jsonl.gz", [{"id": "1", "text": "x"}])
    out = tmp_path / "out"
    out.mkdir()
    with destination_lock(str(out)):                        # another run holds the destination
        with pytest.raises(UserError, match="lock"):
            mix([{"name": "s", "documents": [str(docs / "*.gz")], "output": {"path": str(out)}}])
