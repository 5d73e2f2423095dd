"""A rerun of dedupe into the same attribute set: same settings resume, other settings redo."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolma_tools.errors import UserError
from tests.dedupe.test_dedupe_modes import read_attrs, run, write_docs

TEXT = "a paragraph long enough\nshort one\na paragraph long enough"


def _dedupe(root: Path, filter_name: str, min_length: str):
    return run(root, "--dedupe.name", "p", "--dedupe.paragraphs.attribute_name", "dup", "--dedupe.min_length",
               min_length, "--bloom_filter.file", str(root / filter_name), "--no-bloom_filter.read_only",
               "--bloom_filter.size_in_bytes", "4096")


def test_other_settings_redo_the_files_and_same_settings_resume(tmp_path: Path, capsys):
    write_docs(tmp_path, "a", [{"id": "1", "text": TEXT}, {"id": "2", "text": "short one"}])
    first = _dedupe(tmp_path, "f0.bloom", "0")
    assert read_attrs(tmp_path, "p", "a") == [{"dup": [[34, 57, 1]]}, {"dup": [[0, 9, 1]]}]
    assert first.counters["duplicate_spans"] == 2

    # a new filter and a min_length that skips "short one": the attribute file is rewritten
    _dedupe(tmp_path, "f10.bloom", "10")
    assert read_attrs(tmp_path, "p", "a") == [{"dup": [[34, 57, 1]]}, {"dup": []}]
    assert "1 file(s) have outputs written with other settings" in capsys.readouterr().err

    again = _dedupe(tmp_path, "f10.bloom", "10")  # same settings: resumed, with the earlier counts
    assert again.files_skipped_existing == 1 and again.documents == 2 and again.documents_resumed == 2
    assert again.counters["duplicate_spans"] == 1

    # the same filter, other settings: it holds only this file's keys, so it starts again empty
    # (re-checking against it would flag every paragraph), and the result is a fresh run's
    _dedupe(tmp_path, "f10.bloom", "0")
    assert read_attrs(tmp_path, "p", "a") == [{"dup": [[34, 57, 1]]}, {"dup": [[0, 9, 1]]}]


def test_a_filter_holding_other_files_keys_refuses_to_recheck_a_redone_file(tmp_path: Path):
    write_docs(tmp_path, "a", [{"id": "1", "text": TEXT}])
    write_docs(tmp_path, "b", [{"id": "2", "text": "short one"}])
    _dedupe(tmp_path, "f.bloom", "0")
    (tmp_path / "documents" / "b.jsonl.gz").unlink()    # the next run only sees a
    with pytest.raises(UserError, match=r"already holds the keys of 1 file\(s\) to process"):
        _dedupe(tmp_path, "f.bloom", "10")
