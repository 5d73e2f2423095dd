"""`dolma tag`, `dolma list` and `dolma train-fasttext` end to end (in-process, plus one Ray run)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dolma_tools.cli import cli
from dolma_tools.errors import UserError
from dolma_tools.taggers.runner import TagConfig, run_tag


def read(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def web_only(demo_copy: Path) -> Path:
    for sub in ("speeches", "multilingual"):
        for f in (demo_copy / sub).glob("*"):
            f.unlink()
    return demo_copy / "web" / "web-0000.json.gz"


def test_tag_experiment_with_specs_and_bad_lines(demo_copy: Path):
    doc_file = web_only(demo_copy)
    records = read(doc_file)
    with gzip.open(doc_file, "at") as f:  # a malformed line is counted and gets a placeholder line
        f.write("{not json\n")
    cfg = TagConfig(documents=[str(demo_copy / "*" / "*.json.gz")], experiment="exp", debug=True,
                    taggers=["char_length_v1", "ft_lang_id_top3_doc:as=lang", "pii_regex_with_counts_fast_v2"])
    summary = run_tag(cfg, progress=False)
    assert summary.documents == len(records) and summary.skipped_lines == 1
    out = read(demo_copy.parent / "attributes" / "exp" / "web" / "web-0000.json.gz")
    assert [r["id"] for r in out[:-1]] == [r["id"] for r in records] and out[-1]["id"] is None
    first = out[0]["attributes"]
    assert first["exp__char_length_v1__length"] == [[0, len(records[0]["text"]), len(records[0]["text"])]]
    assert first["exp__lang__en"][0][2] > 0.5 and len([k for k in first if k.startswith("exp__lang__")]) == 3
    assert "exp__pii_regex_with_counts_fast_v2__doc_count" in first
    assert all(isinstance(s[2], float) or isinstance(s[2], int) for v in first.values() for s in v)


def test_tag_without_experiment_one_tree_per_tagger_and_cli(demo_copy: Path):
    web_only(demo_copy)
    result = CliRunner().invoke(cli, ["tag", "--documents", str(demo_copy / "*" / "*.json.gz"), "--debug",
                                      "--taggers", "c4_v2", "profanity_doc_v1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    c4 = read(demo_copy.parent / "attributes" / "c4_v2" / "web" / "web-0000.json.gz")
    assert "c4_v2__c4_v2__line_count" in c4[0]["attributes"]
    prof = read(demo_copy.parent / "attributes" / "profanity_doc_v1" / "web" / "web-0000.json.gz")
    assert 0 <= prof[0]["attributes"]["profanity_doc_v1__profanity_doc_v1__profanity"][0][2] <= 1


def test_tagger_options_config_key_and_errors(demo_copy: Path, tmp_path: Path):
    web_only(demo_copy)
    base = dict(documents=[str(demo_copy / "*" / "*.json.gz")], debug=True)
    with pytest.raises(UserError, match="no option 'model'"):
        run_tag(TagConfig(taggers=["c4_v2"], tagger_options={"c4_v2": {"model": "x"}}, **base), progress=False)
    with pytest.raises(UserError, match="listed twice"):
        run_tag(TagConfig(taggers=["c4_v2", "c4_v2"], **base), progress=False)
    with pytest.raises(UserError, match="needs the option model"):
        run_tag(TagConfig(taggers=["fasttext_classifier"], experiment="e", **base), progress=False)


def test_list_with_user_module(tmp_path: Path):
    module = tmp_path / "my_taggers.py"
    module.write_text(
        "from dolma_tools.taggers import Tagger, register\n"
        "@register('my_exclaim_v1', 'counts exclamation marks')\n"
        "class Exclaim(Tagger):\n"
        "    def tag(self, doc):\n"
        "        return {'count': [(0, len(doc.text), float(doc.text.count('!')))]}\n")
    result = CliRunner().invoke(cli, ["list", "--tagger_modules", str(module)], catch_exceptions=False)
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "counts exclamation marks" in lines["my_exclaim_v1"]
    assert "ft_lang_id_top3_doc" in lines and "gopher_v1" in lines and "pii_regex_with_counts_fast_v2" in lines


def test_train_fasttext_cli_errors_are_one_line(tmp_path: Path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"text": "a b c", "label": "x"}) + "\n")
    result = CliRunner().invoke(cli, ["train-fasttext", "--documents", str(data), "--model_path",
                                      str(tmp_path / "m.bin")])
    assert result.exit_code != 0 and "at least 2 labels" in str(result.exception)


def test_tag_on_ray(demo_copy: Path, ray_session):
    web_only(demo_copy)
    cfg = TagConfig(documents=[str(demo_copy / "*" / "*.json.gz")], experiment="ray",
                    taggers=["gopher_v1", "ft_lang_id_en_doc_v2"], processes=1)
    summary = run_tag(cfg, progress=False)
    assert summary.documents == 30
    out = read(demo_copy.parent / "attributes" / "ray" / "web" / "web-0000.json.gz")
    assert len(out) == 30 and "ray__gopher_v1__word_count" in out[0]["attributes"]
