"""`dolma tokens`: Dolma compatibility, exact ids, round trip, shard rules, determinism, resume."""

from __future__ import annotations

import glob
import gzip
import json
import os
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from dolma_tools.config import build_config
from dolma_tools.errors import UserError
from dolma_tools.io.documents import iter_documents
from dolma_tools.tokenize import TokenShards, load_tokenizer
from dolma_tools.tokenize.config import TokensConfig
from dolma_tools.tokenize.runner import run_tokens
from dolma_tools.tokenize.shards import MANIFEST_KEYS, read_metadata

DATA = Path(__file__).resolve().parents[1] / "data" / "tokenize" / "dolma-1.2.1"
EOS = 50279


def tokenize(documents, destination, *flags, debug=True):
    argv = ["--documents", *[str(d) for d in documents], "--destination", str(destination), *flags]
    if debug:
        argv.append("--debug")
    cfg = build_config(TokensConfig, None, argv)
    return run_tokens(cfg, progress=False)


def by_location(shards: TokenShards) -> dict:
    return {(os.path.basename(d.src), d.loc): (d.id, d.tokens.tolist()) for d in shards.iter_documents()}


def shard_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("part-*"))}


@pytest.fixture(scope="module")
def dolma_input(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("dolma-input") / "documents"
    shutil.copytree(DATA / "documents", target)
    return target


def test_same_ids_as_dolma_121(dolma_input, tmp_path):
    tokenize([dolma_input / "*.jsonl.gz"], tmp_path / "out")
    ours = by_location(TokenShards(tmp_path / "out"))
    dolma = by_location(TokenShards.from_paths(glob.glob(str(DATA / "tokens" / "*.npy"))))
    assert len(dolma) == 43 and ours == dolma


def test_ids_are_tokenizer_encode_plus_eos(dolma_input, tmp_path):
    tokenize([dolma_input / "*.jsonl.gz"], tmp_path / "out", "--batch_size", "7")
    tok = load_tokenizer(None)
    found = by_location(TokenShards(tmp_path / "out"))
    expected = {}
    for path in sorted(dolma_input.glob("*.jsonl.gz")):
        for line, doc in iter_documents(str(path)):
            text = doc["text"].strip()
            if text:
                ids = tok.encode(text).ids
                expected[(path.name, line)] = (doc["id"], ids + [EOS] if ids[-1] != EOS else ids)
    assert found == expected
    # the csv.gz is Dolma's: no header, CRLF rows, quoted id with a comma, 1-based lines
    rows = read_metadata(tmp_path / "out" / "part-0-00000.csv.gz") + read_metadata(tmp_path / "out" / "part-1-00000.csv.gz")
    assert any(r[2] == 'edge,comma "quoted"' for r in rows)
    raw = gzip.decompress((tmp_path / "out" / "part-0-00000.csv.gz").read_bytes())
    assert raw.startswith(b"0,") and raw.endswith(b"\r\n")


def test_round_trip_and_manifest_on_dev_subset(dev_corpus, tmp_path):
    subset = tmp_path / "udhr-head.jsonl.gz"  # multilingual, with non-NFC texts (lines 25, 63)
    with gzip.open(dev_corpus / "multilingual" / "udhr-0000.json.gz") as src, gzip.open(subset, "wb") as out:
        out.writelines(line for _, line in zip(range(80), src))
    files = [subset, dev_corpus / "web" / "web-0000.json.gz"]
    tokenize(files, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "tokens.json").read_text())
    assert list(manifest) == list(MANIFEST_KEYS)
    assert manifest["format"] == "dolma-tools-tokens/1" and manifest["dtype"] == "uint16"
    assert (manifest["vocab_size"], manifest["padded_vocab_size"], manifest["eos_token_id"],
            manifest["pad_token_id"], manifest["bos_token_id"]) == (50280, 50304, EOS, 1, None)
    assert manifest["tokenizer"] == "allenai/gpt-neox-olmo-dolma-v1_5" and len(manifest["tokenizer_sha256"]) == 64
    shards = TokenShards(tmp_path / "out")
    assert manifest["total_tokens"] == sum(s["tokens"] for s in manifest["shards"]) == shards.total_tokens
    for entry in manifest["shards"]:
        assert os.path.getsize(tmp_path / "out" / entry["path"]) == 2 * entry["tokens"] > 0
    tok = load_tokenizer(None)
    texts = {(str(f), line): d["text"].strip() for f in files for line, d in iter_documents(str(f))}
    docs = list(shards.iter_documents())
    assert len(docs) == manifest["total_documents"] == sum(1 for t in texts.values() if t)
    for doc in docs:
        text = texts[(doc.src, doc.loc)]
        assert doc.tokens[-1] == EOS
        decoded = tok.decode(doc.tokens[:-1].tolist(), skip_special_tokens=False)
        # the tokenizer's NFC normaliser is the only change a round trip makes
        assert decoded == unicodedata.normalize("NFC", text)
        if unicodedata.is_normalized("NFC", text):
            assert decoded == text


def test_same_bytes_whatever_the_workers_and_seed_changes_order(dolma_input, tmp_path, ray_session):
    flags = ("--batch_size", "5", "--files_per_process", "2", "--max_size", "4000")
    tokenize([dolma_input / "*.jsonl.gz"], tmp_path / "a", *flags)
    tokenize([dolma_input / "*.jsonl.gz"], tmp_path / "b", *flags, "--processes", "2", debug=False)
    assert shard_bytes(tmp_path / "a") == shard_bytes(tmp_path / "b")
    assert (tmp_path / "a" / "tokens.json").read_bytes() == (tmp_path / "b" / "tokens.json").read_bytes()
    tokenize([dolma_input / "*.jsonl.gz"], tmp_path / "c", *flags, "--seed", "7")
    a, c = TokenShards(tmp_path / "a"), TokenShards(tmp_path / "c")
    assert [d.id for d in a.iter_documents()] != [d.id for d in c.iter_documents()]
    assert sorted(by_location(a).items()) == sorted(by_location(c).items())


def test_long_documents_split_and_no_empty_shards(dolma_input, tmp_path):
    tokenize([dolma_input / "a.jsonl.gz"], tmp_path / "out", "--max_size", "300")
    shards = TokenShards(tmp_path / "out")
    assert len(shards.shards) > 10
    for shard in shards.shards:
        assert 0 < shard.tokens < 300  # Dolma's rule: written + length < max_size
        rows = read_metadata(shard.metadata)
        assert rows[0][0] == 0 and rows[-1][1] == shard.tokens == os.path.getsize(shard.path) // 2
    reference = {}
    tokenize([dolma_input / "a.jsonl.gz"], tmp_path / "ref")
    reference = by_location(TokenShards(tmp_path / "ref"))
    assert by_location(shards) == reference  # split documents come back whole


def test_resume_skips_finished_groups(dolma_input, tmp_path):
    first = tokenize([dolma_input / "*.jsonl.gz"], tmp_path / "out")
    assert first.files == 2 and first.files_skipped_existing == 0
    before = shard_bytes(tmp_path / "out")
    second = tokenize([dolma_input / "*.jsonl.gz"], tmp_path / "out")
    assert second.files_skipped_existing == 2
    assert shard_bytes(tmp_path / "out") == before
    third = tokenize([dolma_input / "*.jsonl.gz"], tmp_path / "out", "--seed", "1")  # settings changed: redone
    assert third.files_skipped_existing == 0


def test_wrong_eos_and_dtype_fail_before_work(dolma_input, tmp_path):
    with pytest.raises(UserError, match="not its end-of-text token"):
        tokenize([dolma_input / "*.jsonl.gz"], tmp_path / "x", "--tokenizer.eos_token_id", "0")
    with pytest.raises(UserError, match="id 50279"):
        tokenize([dolma_input / "*.jsonl.gz"], tmp_path / "x", "--tokenizer.name_or_path",
                 "allenai/eleuther-ai-gpt-neox-20b-pii-special", "--tokenizer.eos_token_id", "50279")
    with pytest.raises(UserError, match="max_size"):
        tokenize([dolma_input / "*.jsonl.gz"], tmp_path / "x", "--max_size", "1")
    assert not (tmp_path / "x").exists()


def test_pii_special_tokenizer_and_uint32(dolma_input, tmp_path):
    tokenize([dolma_input / "a.jsonl.gz"], tmp_path / "out", "--tokenizer.name_or_path",
             "allenai/eleuther-ai-gpt-neox-20b-pii-special", "--dtype", "uint32")
    shards = TokenShards(tmp_path / "out")
    assert shards.manifest["eos_token_id"] == 0 and shards.manifest["dtype"] == "uint32"
    tok = load_tokenizer("allenai/eleuther-ai-gpt-neox-20b-pii-special")
    doc = next(shards.iter_documents())
    text = dict(iter_documents(str(dolma_input / "a.jsonl.gz")))[doc.loc]["text"].strip()
    assert doc.tokens.dtype == np.uint32 and doc.tokens.tolist() == tok.encode(text).ids + [0]


def test_fields_bad_lines_and_generated_ids(tmp_path):
    src = tmp_path / "docs.jsonl"
    src.write_text("\n".join([
        json.dumps({"meta": {"body": "hello world"}, "n": 5}),
        "{not json",
        json.dumps({"meta": {"body": 3}}),
        json.dumps({"meta": {"body": "   "}}),
        json.dumps({"meta": {"body": "second one"}, "n": 6}),
    ]) + "\n")
    summary = tokenize([src], tmp_path / "a", "--fields.text_field_name", "meta.body", "--fields.id_field_name", "n",
                       "--fields.id_field_type", "int")
    assert summary.documents == 2 and summary.skipped_lines == 2
    assert sorted(d.id for d in TokenShards(tmp_path / "a").iter_documents()) == ["5", "6"]
    tokenize([src], tmp_path / "b", "--fields.text_field_name", "meta.body", "--fields.id_field_name", "null")
    ids = sorted(d.id for d in TokenShards(tmp_path / "b").iter_documents())
    import hashlib

    digest = hashlib.sha256(str(src).encode()).hexdigest()
    assert ids == [f"{digest}-1", f"{digest}-5"]


def test_bos_and_instances(dolma_input, tmp_path):
    tokenize([dolma_input / "b.jsonl.gz"], tmp_path / "out", "--tokenizer.bos_token_id", "1")
    shards = TokenShards(tmp_path / "out")
    docs = list(shards.iter_documents())
    assert all(d.tokens[0] == 1 and d.tokens[-1] == EOS for d in docs)
    n = shards.num_instances(64)
    assert n == shards.total_tokens // 64  # one shard: its tail is dropped
    assert shards.instance(1, 64).tolist() == shards.tokens(0)[64:128].tolist()
    assert len(list(shards.iter_instances(64))) == n


def test_cli_through_ray(dolma_input, tmp_path, ray_session):
    from click.testing import CliRunner

    from dolma_tools.cli import cli

    result = CliRunner().invoke(cli, ["tokenize", "--documents", str(dolma_input / "*.jsonl.gz"),
                                      "--destination", str(tmp_path / "out"), "--processes", "2",
                                      "--tokenizer.eos_token_id", "50279"])
    assert result.exit_code == 0, result.output
    assert TokenShards(tmp_path / "out").manifest["total_documents"] == 43
