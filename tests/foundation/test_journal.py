"""Resume keeps only outputs the current settings wrote (runtime/journal.py)."""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

from dolma_tools.cli import main
from dolma_tools.config import RuntimeConfig
from dolma_tools.runtime import FileResult, run_files
from dolma_tools.runtime.journal import journal_path


def write_output(out_dir: str, label: str, path: str) -> FileResult:
    (Path(out_dir) / Path(path).name).write_text(label)
    return FileResult(path=path, documents=1)


def run(tmp_path: Path, inputs: list[str], label: str, settings: dict | None, **kw):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    is_done = lambda p: (out / Path(p).name).exists()  # noqa: E731
    return run_files("count", inputs, functools.partial(write_output, str(out), label),
                     RuntimeConfig(debug=True, **kw), is_done=is_done, progress=False,
                     output_root=str(out), settings=settings)


def outputs(tmp_path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((tmp_path / "out").glob("in-*"))}


def make_inputs(tmp_path: Path, n: int) -> list[str]:
    inputs = []
    for i in range(n):
        (tmp_path / f"in-{i}").write_text("x")
        inputs.append(str(tmp_path / f"in-{i}"))
    return inputs


def test_same_settings_resume_and_other_settings_redo(tmp_path: Path, capsys):
    inputs = make_inputs(tmp_path, 3)
    assert run(tmp_path, inputs, "A", {"taggers": ["a"]}).files_skipped_existing == 0
    assert run(tmp_path, inputs, "A2", {"taggers": ["a"]}).files_skipped_existing == 3  # resumed: kept
    assert outputs(tmp_path) == {"in-0": "A", "in-1": "A", "in-2": "A"}

    summary = run(tmp_path, inputs, "B", {"taggers": ["b"]})
    assert summary.files_skipped_existing == 0 and summary.documents == 3
    assert outputs(tmp_path) == {"in-0": "B", "in-1": "B", "in-2": "B"}
    note = capsys.readouterr().err
    assert "count: 3 file(s) have outputs written with other settings (taggers: ['a'] → ['b']); they are redone" in note


def test_a_file_written_by_other_settings_is_redone_even_after_a_partial_run(tmp_path: Path):
    inputs = make_inputs(tmp_path, 3)
    run(tmp_path, inputs, "A", {"k": 1})
    run(tmp_path, inputs[:1], "B", {"k": 2})            # only in-0 gets the new settings
    assert outputs(tmp_path) == {"in-0": "B", "in-1": "A", "in-2": "A"}
    summary = run(tmp_path, inputs, "B", {"k": 2})      # in-1, in-2 still hold k=1 outputs
    assert summary.files_skipped_existing == 1
    assert outputs(tmp_path) == {"in-0": "B", "in-1": "B", "in-2": "B"}
    journal = json.loads(Path(journal_path(str(tmp_path / "out"), "count")).read_text())
    assert list(journal["settings"].values()) == [{"k": 2}]  # digests no file uses are dropped
    assert sorted(journal["files"]) == sorted(inputs)


def test_outputs_without_a_journal_are_kept_and_adopted(tmp_path: Path):
    inputs = make_inputs(tmp_path, 2)
    run(tmp_path, inputs, "old", None)                  # as a version that kept no journal
    assert not Path(journal_path(str(tmp_path / "out"), "count")).exists()
    assert run(tmp_path, inputs, "new", {"k": 1}).files_skipped_existing == 2
    assert run(tmp_path, inputs, "newer", {"k": 1}).files_skipped_existing == 2  # adopted, not redone
    assert outputs(tmp_path) == {"in-0": "old", "in-1": "old"}


def test_an_output_missing_from_the_journal_is_redone(tmp_path: Path):
    """A run killed between finishing a file and rewriting the journal: that file runs again."""
    inputs = make_inputs(tmp_path, 2)
    run(tmp_path, inputs[:1], "A", {"k": 1})
    (tmp_path / "out" / "in-1").write_text("half")     # an output the journal never heard of
    summary = run(tmp_path, inputs, "A", {"k": 1})
    assert summary.files_skipped_existing == 1
    assert outputs(tmp_path) == {"in-0": "A", "in-1": "A"}


def test_ignore_existing_still_redoes_everything(tmp_path: Path):
    inputs = make_inputs(tmp_path, 2)
    run(tmp_path, inputs, "A", {"k": 1})
    assert run(tmp_path, inputs, "A2", {"k": 1}, ignore_existing=True).files_skipped_existing == 0
    assert outputs(tmp_path) == {"in-0": "A2", "in-1": "A2"}


def test_tag_rerun_with_other_taggers_rewrites_the_experiment(tmp_path: Path, capsys):
    docs = tmp_path / "documents"
    docs.mkdir()
    with gzip.open(docs / "a.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"id": "d0", "text": "hello world", "source": "s"}) + "\n")
    common = ["tag", "--documents", str(docs / "*.jsonl.gz"), "--experiment", "e1", "--debug"]
    attributes = tmp_path / "attributes" / "e1" / "a.jsonl.gz"

    main([*common, "--taggers", "char_length_v1"])
    main([*common, "--taggers", "bytes_length_v1"])
    assert json.loads(gzip.open(attributes, "rt").readline())["attributes"] == {"e1__bytes_length_v1__bytes": [[0, 11, 11.0]]}
    assert "1 file(s) have outputs written with other settings" in capsys.readouterr().err

    main([*common, "--taggers", "bytes_length_v1"])  # same settings: resumed
    assert "(1 already done" in capsys.readouterr().err


def count_and_complain(path: str) -> FileResult:
    result = FileResult(path=path, documents=3, counters={"spans": 2})
    result.skipped, result.errors = 1, [f"{path}:2: malformed JSON"]
    return result


def test_a_resumed_run_summary_still_counts_the_files_done_before(tmp_path: Path):
    """Bad lines found by the run that did a file stay in the summary of the run that resumes."""
    inputs = make_inputs(tmp_path, 2)
    out = tmp_path / "out"
    out.mkdir()

    def once(path: str) -> FileResult:
        (out / Path(path).name).write_text("done")
        return count_and_complain(path)

    common = dict(is_done=lambda p: (out / Path(p).name).exists(), progress=False, output_root=str(out),
                  settings={"k": 1})
    run_files("count", inputs[:1], once, RuntimeConfig(debug=True), **common)
    summary = run_files("count", inputs, once, RuntimeConfig(debug=True), **common)
    assert (summary.files, summary.files_skipped_existing) == (2, 1)
    assert (summary.documents, summary.documents_resumed, summary.skipped_lines) == (6, 3, 2)
    assert summary.counters == {"spans": 4}
    assert summary.errors == [f"{inputs[0]}:2: malformed JSON", f"{inputs[1]}:2: malformed JSON"]
    assert summary.lines()[0].startswith("count: 2 files (1 already done, 0 failed), 6 documents (3 in files "
                                         "already done), 2 skipped lines")
