"""Hostile input through `dolma tokens`, `dolma dedupe` and `dolma stats`, and kill -9 of a whole
`dolma tokens` run and of a MinHash `dolma dedupe` run between its stages, then a re-run."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import signal
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from dolma_tools.config import from_dict
from tests.foundation.helpers import VENV_BIN, dolma, read_jsonl_gz, tree_bytes, write_jsonl_gz

TOKENIZER = "allenai/gpt-neox-olmo-dolma-v1_5"


def good(doc_id: str, text: str) -> bytes:
    return json.dumps({"id": doc_id, "text": text, "source": "s"}).encode() + b"\n"


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, list[str]]:
    """documents/: a malformed line, non-string text, invalid UTF-8, a truncated .gz, a clean file.

    Returns the directory and the ids of the good documents, in file order (glob order: cut, mixed, ok).
    """
    docs = tmp_path / "documents"
    docs.mkdir()
    shared = "This paragraph is shared by two documents and long enough to count."
    (docs / "mixed.jsonl").write_bytes(
        good("m1", f"first good document\n{shared}")
        + b"{not json\n"
        + b'{"id": "t", "text": 42}\n'
        + b'{"id": "u", "text": "\xc3\x28"}\n'
        + b"\n"
        + good("m2", f"second good document \U0001F389\n{shared}"))
    payload = b"".join(good(f"g{i}", f"some text number {i} " * 20) for i in range(2000))
    (docs / "cut.jsonl.gz").write_bytes(gzip.compress(payload)[:-200])
    write_jsonl_gz(docs / "ok.jsonl.gz", [{"id": f"o{i}", "text": f"ok document {i} " * 5} for i in range(30)])
    with pytest.raises(EOFError):                                        # really truncated
        gzip.decompress((docs / "cut.jsonl.gz").read_bytes())
    # what survives the cut: every complete line before it
    raw = zlib.decompressobj(31).decompress((docs / "cut.jsonl.gz").read_bytes())
    cut_ids = [json.loads(line)["id"] for line in raw.split(b"\n")[:-1]]
    assert 1000 < len(cut_ids) < 2000
    return docs, [*cut_ids, "m1", "m2", *[f"o{i}" for i in range(30)]]


REASONS = ("mixed.jsonl:2: malformed JSON", "mixed.jsonl:3: `text` is int, not a string",
           "mixed.jsonl:4: invalid UTF-8", "cut.jsonl.gz:")


def _assert_reasons(errors: list[str]) -> None:
    joined = "\n".join(errors)
    for reason in REASONS:
        assert reason in joined, reason


def test_hostile_input_through_tokens(hostile, tmp_path: Path):
    from dolma_tools.tokenize.config import TokensConfig
    from dolma_tools.tokenize.runner import run_tokens

    docs, ids = hostile
    dest = tmp_path / "tok"
    cfg = from_dict(TokensConfig, {"documents": [str(docs / "*")], "destination": str(dest), "debug": True,
                                   "tokenizer": {"name_or_path": TOKENIZER}, "seed": 1})
    summary = run_tokens(cfg, progress=False)
    assert summary.documents == len(ids) and summary.skipped_lines == 4
    _assert_reasons(summary.errors)
    seen = []
    for meta in sorted(dest.glob("part-*.csv.gz")):
        with gzip.open(meta, "rt") as fh:
            seen.extend(row[2] for row in csv.reader(io.StringIO(fh.read())))
    assert sorted(seen) == sorted(ids)                                     # every good document, once
    manifest = json.loads((dest / "tokens.json").read_text())
    assert manifest["total_documents"] == len(ids)


def test_hostile_input_through_dedupe_paragraphs_and_minhash(hostile, tmp_path: Path):
    from dolma_tools.dedupe.config import DedupeConfig
    from dolma_tools.dedupe.runner import run_dedupe

    docs, ids = hostile
    cfg = from_dict(DedupeConfig, {
        "documents": [str(docs / "*")], "debug": True,
        "dedupe": {"name": "dd", "paragraphs": {"attribute_name": "bff_duplicate_paragraph_spans"},
                   "minhash": {"attribute_name": "mh"}},
        "bloom_filter": {"file": str(tmp_path / "bloom.bin"), "size_in_bytes": 1 << 20}})
    summary = run_dedupe(cfg, progress=False)
    assert summary.documents == len(ids) and summary.skipped_lines == 4
    _assert_reasons(summary.errors)
    out = tmp_path / "attributes" / "dd"
    mixed = [json.loads(line) for line in (out / "mixed.jsonl").read_text().splitlines()]
    # one record per non-blank input line (placeholders for the bad ones), aligned for `dolma mix`
    assert [m["id"] for m in mixed] == ["m1", None, None, None, "m2"]
    assert "bff_duplicate_paragraph_spans" not in mixed[0]["attributes"] or \
        mixed[0]["attributes"]["bff_duplicate_paragraph_spans"] == []
    start = len("second good document \U0001F389\n")                        # code points, not bytes
    assert [s[:2] for s in mixed[4]["attributes"]["bff_duplicate_paragraph_spans"]] == \
        [[start, start + len("This paragraph is shared by two documents and long enough to count.")]]
    cut = read_jsonl_gz(out / "cut.jsonl.gz")
    assert [c["id"] for c in cut][:-1] == [i for i in ids if i.startswith("g")] and cut[-1]["id"] is None
    assert [o["id"] for o in read_jsonl_gz(out / "ok.jsonl.gz")] == [f"o{i}" for i in range(30)]


def test_hostile_input_through_stats(hostile, tmp_path: Path):
    from dolma_tools.stats.config import StatsConfig
    from dolma_tools.stats.runner import run_stats

    docs, ids = hostile
    cfg = from_dict(StatsConfig, {"documents": [str(docs / "*")], "output": str(tmp_path / "st"), "debug": True,
                                  "html": False})
    run_stats(cfg, progress=False)
    report = json.loads((tmp_path / "st" / "report.json").read_text())
    assert report["summary"]["documents"] == len(ids)
    assert report["summary"]["skipped_lines"] == 4
    assert report["summary"]["files"] == 3


# ---------------------------------------------------------------------------------------------
# kill -9 of the whole run, then a re-run


def _corpus(root: Path, files: int, docs: int) -> Path:
    documents = root / "documents"
    for f in range(files):
        write_jsonl_gz(documents / f"part-{f:03d}.jsonl.gz",
                       [{"id": f"{f}-{i}", "text": f"document {i % 97} about topic {i % 13} " * (4 + i % 30)
                         + f"unique tail {f} {i}"} for i in range(docs)])
    return documents


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "dolma"), *argv], capture_output=True, text=True, timeout=300, cwd=cwd)


def _kill_when(argv: list[str], ready, timeout: float = 240, cwd: Path | None = None,
               interval: float = 0.005) -> int:
    proc = subprocess.Popen([str(VENV_BIN / "dolma"), *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, cwd=cwd)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(interval)
    try:
        os.killpg(proc.pid, signal.SIGKILL)              # the driver and any Ray workers, at once
    except ProcessLookupError:                           # it finished first: the caller's checks say so
        pass
    return proc.wait()


def _no_temporaries(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if ".tmp" in p.name)


@pytest.fixture(scope="module", params=[pytest.param("debug", id="in-process"),
                                        pytest.param("ray", id="ray", marks=pytest.mark.slow)])
def tokens_killed_then_rerun(request, tmp_path_factory) -> tuple[Path, Path, bool]:
    """Kill `dolma tokens` while a shard is being written, re-run it, and run a clean copy.

    Returns (killed run's destination, clean run's destination, whether a temporary was open at the kill).
    """
    tmp_path = tmp_path_factory.mktemp(f"tokens-{request.param}")
    extra = ["--debug"] if request.param == "debug" else ["--processes", "1"]
    for root in ("killed", "clean"):
        _corpus(tmp_path / root, 12, 1000)
    # relative paths: the .csv.gz metadata records the document path as given
    argv = ["tokens", "--documents", "documents/*.jsonl.gz", "--destination", "tok",
            "--tokenizer.name_or_path", TOKENIZER, "--seed", "5", "--max_size", "200000", *extra]
    killed, clean = tmp_path / "killed" / "tok", tmp_path / "clean" / "tok"
    _kill_when(argv, lambda: len(list(killed.glob("part-*.npy"))) >= 3 and any(killed.glob("*.tmp")),
               cwd=tmp_path / "killed")
    assert 3 <= len(list(killed.glob("part-*.npy"))) and not (killed / "tokens.json").exists(), \
        "the kill must land mid-run"
    temporary_at_kill = any(killed.glob("*.tmp"))
    for root in ("killed", "clean"):
        assert _run(argv, cwd=tmp_path / root).returncode == 0
    return killed, clean, temporary_at_kill


def test_kill_minus_9_of_dolma_tokens_then_rerun_gives_identical_shards(tokens_killed_then_rerun):
    killed, clean, _ = tokens_killed_then_rerun
    killed_tree = {k: v for k, v in tree_bytes(killed).items() if ".tmp" not in k}
    clean_tree = tree_bytes(clean)
    killed_tree.pop("tokens.json"), clean_tree.pop("tokens.json")
    assert sorted(killed_tree) == sorted(clean_tree) and len([k for k in clean_tree if k.endswith(".npy")]) >= 12
    assert killed_tree == clean_tree                     # byte-identical shards and metadata
    manifest = json.loads((killed / "tokens.json").read_text())
    assert manifest["total_documents"] == 12 * 1000      # no document twice, none lost
    assert manifest == {**json.loads((clean / "tokens.json").read_text()), "total_documents": 12 * 1000}


def test_kill_minus_9_of_dolma_tokens_leaves_no_temporaries_after_the_rerun(tokens_killed_then_rerun):
    killed, _, temporary_at_kill = tokens_killed_then_rerun
    if not temporary_at_kill:
        pytest.skip("the kill landed between two shards: no temporary to clean up")
    assert _no_temporaries(killed) == []


@pytest.fixture(scope="module", params=[pytest.param("debug", id="in-process"),
                                        pytest.param("ray", id="ray", marks=pytest.mark.slow)])
def minhash_killed_then_rerun(request, tmp_path_factory) -> tuple[Path, Path, bool]:
    """MinHash maps every file, clusters in the driver, then writes attribute files: kill in the write stage,
    re-run, and run a clean copy. Returns (killed run's root, clean run's root, whether a temporary was open at the kill)."""
    tmp_path = tmp_path_factory.mktemp(f"minhash-{request.param}")
    extra = ["--debug"] if request.param == "debug" else ["--processes", "1"]
    killed_docs, clean_docs = _corpus(tmp_path / "killed", 24, 300), _corpus(tmp_path / "clean", 24, 300)

    def argv(docs: Path) -> list[str]:
        return ["dedupe", "--documents", f"{docs}/*.jsonl.gz", "--dedupe.name", "mh",
                "--dedupe.minhash.attribute_name", "mh_dup", "--dedupe.minhash.ngram_size", "3", *extra]

    out = tmp_path / "killed" / "attributes" / "mh"

    def open_temporary_or_late_in_the_write_stage() -> bool:
        # a small attribute file is open for well under a millisecond (ISA-L gzip): watch without
        # sleeping so the kill lands on one; late in the write stage, kill anyway
        names = [entry.name for entry in os.scandir(out)] if out.is_dir() else []
        return any(name.endswith(".tmp") for name in names) or sum(n.endswith(".jsonl.gz") for n in names) >= 20

    _kill_when(argv(killed_docs), open_temporary_or_late_in_the_write_stage, interval=0)
    written = len(list(out.glob("part-*.jsonl.gz")))
    assert written < 24 and (written or any(out.glob("*.tmp"))), f"the kill must land in the write stage ({written} files written)"
    temporary_at_kill = any(out.glob("*.tmp"))
    assert dolma(*argv(killed_docs)).returncode == 0
    assert dolma(*argv(clean_docs)).returncode == 0
    return tmp_path / "killed", tmp_path / "clean", temporary_at_kill


def test_kill_minus_9_of_minhash_dedupe_between_stages_then_rerun_is_identical(minhash_killed_then_rerun):
    killed, clean, _ = minhash_killed_then_rerun
    out = killed / "attributes" / "mh"
    killed_tree = {k: v for k, v in tree_bytes(out).items() if ".tmp" not in k}
    clean_tree = tree_bytes(clean / "attributes" / "mh")
    assert sorted(killed_tree) == [f"part-{f:03d}.jsonl.gz" for f in range(24)]
    assert killed_tree == clean_tree                     # clusters and kept documents as in a clean run
    flagged = sum(1 for name in killed_tree for rec in read_jsonl_gz(out / name) if rec["attributes"].get("mh_dup"))
    assert flagged > 0                                  # the corpus does have near-duplicates


def test_kill_minus_9_of_minhash_dedupe_leaves_no_temporaries_after_the_rerun(minhash_killed_then_rerun):
    killed, _, temporary_at_kill = minhash_killed_then_rerun
    if not temporary_at_kill:
        pytest.skip("the kill landed between two files: no temporary to clean up")
    assert _no_temporaries(killed) == []


# ---------------------------------------------------------------------------------------------
# Odd paths


def test_tag_with_a_relative_documents_path_writes_outputs(tmp_path: Path, monkeypatch):
    from dolma_tools.taggers.runner import TagConfig, run_tag

    write_jsonl_gz(tmp_path / "documents" / "a.jsonl.gz", [{"id": str(i), "text": "x" * i} for i in range(5)])
    monkeypatch.chdir(tmp_path)
    summary = run_tag(TagConfig(documents=["documents/*.jsonl.gz"], taggers=["char_length_v1"], experiment="e",
                                debug=True), progress=False)
    assert summary.documents == 5
    out = tmp_path / "attributes" / "e" / "a.jsonl.gz"
    assert out.is_file() and len(read_jsonl_gz(out)) == 5


def test_tokens_fast_path_survives_its_cache_being_cleared(monkeypatch):
    import json as _json

    from dolma_tools.tokenize import fastpath
    from dolma_tools.tokenize.tokenizers import load_tokenizer, resolve_tokenizer, tokenizer_json

    resolved = resolve_tokenizer(TOKENIZER)
    tokenizer = load_tokenizer(TOKENIZER)
    encoder = fastpath.AsciiFastEncoder(tokenizer, _json.loads(tokenizer_json(resolved)), False)
    monkeypatch.setattr(fastpath, "MAX_CACHE", len(encoder.cache) + 50)
    first = "The quick brown fox"
    encoder.encode_batch([first])                                  # "The", " quick", ... now cached
    second = first + " " + " ".join(f"w{i}" for i in range(60))    # cached pieces + enough new ones to clear
    assert encoder.encode_batch([second]) == [tokenizer.encode(second, add_special_tokens=False).ids]
