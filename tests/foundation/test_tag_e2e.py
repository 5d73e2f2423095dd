"""`dolma tag` end to end: CLI, Ray, Dolma's output format, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dolma_tools.errors import DataError
from dolma_tools.taggers.runner import TagConfig, run_tag
from dolma_tools.taggers.sampling import document_uniform
from tests.foundation.helpers import dolma, read_jsonl_gz


def test_cli_tag_writes_line_aligned_attributes_with_dolma_keys(demo_copy: Path):
    result = dolma("tag", "--documents", f"{demo_copy}/*/*.json.gz", "--experiment", "e",
                   "--taggers", "char_length_v1", "random_number_v1", "--processes", "2")
    assert result.returncode == 0, result.stderr
    for doc_file in sorted(demo_copy.glob("*/*.json.gz")):
        docs = read_jsonl_gz(doc_file)
        attr_file = demo_copy.parent / "attributes" / "e" / doc_file.parent.name / doc_file.name
        attrs = read_jsonl_gz(attr_file)
        assert [a["id"] for a in attrs] == [d["id"] for d in docs]
        for doc, attr in zip(docs, attrs):
            n = len(doc["text"])
            assert list(attr) == ["id", "attributes", "source"]          # Dolma's key order
            assert attr["source"] == doc["source"]
            assert attr["attributes"] == {
                "e__char_length_v1__length": [[0, n, float(n)]],
                "e__random_number_v1__random": [[0, n, round(document_uniform(doc["id"]), 5)]],
            }
    summary = json.loads((demo_copy.parent / "attributes" / "e" / ".summary-tag.json").read_text())
    assert summary["files"] == 3 and summary["documents"] == 399 and summary["skipped_lines"] == 0
    assert "tag: 3 files" in result.stderr


def test_without_experiment_each_tagger_gets_its_own_tree(demo_copy: Path):
    cfg = TagConfig(documents=[f"{demo_copy}/web/*.json.gz"], taggers=["char_length_v1"], debug=True)
    run_tag(cfg, progress=False)
    attrs = read_jsonl_gz(demo_copy.parent / "attributes" / "char_length_v1" / "web" / "web-0000.json.gz")
    assert len(attrs) == 30
    assert list(attrs[0]["attributes"]) == ["char_length_v1__char_length_v1__length"]


def test_bad_lines_are_counted_skipped_and_keep_alignment(tmp_path: Path):
    doc_file = tmp_path / "documents" / "x.jsonl"
    doc_file.parent.mkdir(parents=True)
    doc_file.write_text('{"id": "a", "text": "abc"}\n{"id": "b", "text": \n\n{"id": "c", "text": "hello"}\n{"id": "d"}\n')
    cfg = TagConfig(documents=[str(doc_file)], taggers=["char_length_v1"], experiment="e", debug=True)
    summary = run_tag(cfg, progress=False)
    assert summary.documents == 2 and summary.skipped_lines == 2
    assert summary.errors[0].startswith(f"{doc_file}:2: malformed JSON")
    assert summary.errors[1] == f"{doc_file}:5: missing `text`"
    lines = [json.loads(x) for x in (tmp_path / "attributes" / "e" / "x.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["a", None, "c", None]             # one line per record
    assert lines[2]["attributes"] == {"e__char_length_v1__length": [[0, 5, 5.0]]}
    with pytest.raises(DataError, match=r"x.jsonl:2: malformed JSON"):
        run_tag(TagConfig(documents=[str(doc_file)], taggers=["char_length_v1"], experiment="f",
                          debug=True, strict=True), progress=False)
    assert not (tmp_path / "attributes" / "f" / "x.jsonl").exists()      # nothing half-written


def test_strict_cli_exit_code_and_message(tmp_path: Path):
    doc_file = tmp_path / "documents" / "x.jsonl"
    doc_file.parent.mkdir(parents=True)
    doc_file.write_text('{"id": "a", "text": "abc"}\nnot json\n')
    result = dolma("tag", "--documents", str(doc_file), "--taggers", "char_length_v1", "--strict", "--debug")
    assert result.returncode == 1
    assert f"error: bad input: {doc_file}:2: malformed JSON" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv, message", [
    (["tag", "--documents", "/nonexistent/*.gz", "--taggers", "char_length_v1"], "no files match documents pattern '/nonexistent/*.gz'"),
    (["tag", "--taggers", "char_length_v1"], "missing required config key `documents`"),
    (["tag", "--documents", "{docs}", "--taggers", "nope_v9"], "unknown tagger 'nope_v9'"),
    (["tag", "--documents", "{docs}", "--taggers", "char_length_v1", "--processes", "two"], "`processes`: expected an integer or null, got 'two'"),
])
def test_user_errors_are_one_line_and_exit_2(demo_copy: Path, argv, message):
    argv = [a.replace("{docs}", f"{demo_copy}/web/*.json.gz") for a in argv]
    result = dolma(*argv)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {message}" or message in result.stderr
    assert "Traceback" not in result.stderr


def test_unimplemented_subcommands_say_so(tmp_path: Path):
    import importlib

    from dolma_tools.cli import SUBCOMMANDS

    for name, (module, _) in SUBCOMMANDS.items():
        command = importlib.import_module(module).command
        if (command.help or "").startswith("Not implemented"):
            result = dolma(name)
            assert result.returncode == 2 and "not implemented yet" in result.stderr


def test_config_after_subcommand_and_tagger_modules(tmp_path: Path, demo_copy: Path):
    module = tmp_path / "my_taggers.py"
    module.write_text(
        "from dolma_tools.taggers import Tagger, register\n"
        "@register('vowel_count_v1', 'number of vowels')\n"
        "class Vowels(Tagger):\n"
        "    def tag(self, doc):\n"
        "        return {'vowels': [(0, len(doc.text), sum(c in 'aeiou' for c in doc.text))]}\n")
    cfg = tmp_path / "tag.yaml"
    cfg.write_text(f"documents: ['{demo_copy}/web/*.json.gz']\ntaggers: [vowel_count_v1]\n"
                   f"tagger_modules: ['{module}']\nexperiment: v\ndebug: true\n")
    result = dolma("tag", "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    docs = read_jsonl_gz(demo_copy / "web" / "web-0000.json.gz")
    attrs = read_jsonl_gz(demo_copy.parent / "attributes" / "v" / "web" / "web-0000.json.gz")
    assert attrs[0]["attributes"]["v__vowel_count_v1__vowels"][0][2] == float(sum(c in "aeiou" for c in docs[0]["text"]))
    listed = dolma("list", "--tagger_modules", str(module))
    assert "vowel_count_v1" in listed.stdout and "number of vowels" in listed.stdout


def test_existing_outputs_are_skipped_unless_ignore_existing(demo_copy: Path):
    cfg = TagConfig(documents=[f"{demo_copy}/web/*.json.gz"], taggers=["char_length_v1"], experiment="e", debug=True)
    assert run_tag(cfg, progress=False).documents == 30
    again = run_tag(cfg, progress=False)
    assert again.files_skipped_existing == 1 and again.documents_this_run == 0
    assert again.documents == again.documents_resumed == 30  # the summary still covers the whole output
    cfg.ignore_existing = True
    assert run_tag(cfg, progress=False).documents == 30
