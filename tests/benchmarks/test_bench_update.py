"""`benchmarks/run.py --update`: re-measured stages replace the earlier rows, the rest are kept with their origin."""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.run import merge_previous  # noqa: E402
from benchmarks.stages import get_stages  # noqa: E402


def _run(stage, tool, seconds):
    return {"stage": stage, "tool": tool, "workers": 1, "round": 1, "size_label": "100MB-s17", "input_mb": 100.0,
            "input_documents": 10, "seconds": seconds, "peak_rss": 1, "ok": True}


def test_update_keeps_other_stages_and_records_where_they_come_from(tmp_path):
    earlier = {"meta": {"started_at": "2026-11-22T15:44:11+00:00", "commit": "e191104"},
               "corpus": {"label": "100MB-s17", "tokens": 123},
               "runs": [_run("tag", "dolma-tools", 30.0), _run("tokens", "dolma-tools", 26.0)],
               "checks": {"100MB-s17/tag/w1": {"ok": True}, "100MB-s17/tokens/w1": {"ok": False}},
               "langid": {"ft_lang_id_doc_v1": {"accuracy": 0.76}}, "rows": [{"stage": "tag"}]}
    (tmp_path / "2026-11-22.json").write_text(json.dumps(earlier))
    now = {"meta": {"started_at": "2026-11-22T19:05:00+00:00", "commit": "abc1234"},
           "corpus": {"label": "100MB-s17", "tokens": None}, "runs": [_run("tokens", "dolma-tools", 20.0)],
           "checks": {"100MB-s17/tokens/w1": {"ok": True}}, "notes": []}
    merge_previous(now, get_stages(["tokens"]), tmp_path)
    assert sorted((r["stage"], r["seconds"]) for r in now["runs"]) == [("tag", 30.0), ("tokens", 20.0)]
    assert now["checks"] == {"100MB-s17/tag/w1": {"ok": True}, "100MB-s17/tokens/w1": {"ok": True}}
    assert now["provenance"] == [
        {"stages": ["tag"], "started_at": "2026-11-22T15:44:11+00:00", "commit": "e191104", "wall_minutes": None,
         "file": "2026-11-22.json"},
        {"stages": ["tokens"], "started_at": "2026-11-22T19:05:00+00:00", "commit": "abc1234", "wall_minutes": None,
         "file": "this run"}]
    assert now["langid"] == earlier["langid"] and now["corpus"]["tokens"] == 123


def test_update_on_another_corpus_merges_nothing(tmp_path):
    earlier = {"meta": {"started_at": "x", "commit": "y"}, "corpus": {"label": "200MB-s17"},
               "runs": [_run("tag", "dolma-tools", 30.0)], "checks": {}, "rows": [{"stage": "tag"}]}
    (tmp_path / "2026-11-22.json").write_text(json.dumps(earlier))
    now = {"meta": {"started_at": "z", "commit": "w"}, "corpus": {"label": "100MB-s17"},
           "runs": [_run("tokens", "dolma-tools", 20.0)], "checks": {}, "notes": []}
    merge_previous(now, get_stages(["tokens"]), tmp_path)
    assert [r["stage"] for r in now["runs"]] == ["tokens"] and "provenance" not in now
    assert "no earlier run on 100MB-s17" in now["notes"][0]


def test_stages_run_in_pipeline_order_whatever_order_they_are_named():
    assert [s.name for s in get_stages(["mix", "dedupe", "tag"])] == ["tag", "dedupe", "mix"]
