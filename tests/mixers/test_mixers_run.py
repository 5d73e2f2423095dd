"""`dolma mix` end to end: alignment rules, errors, sampling, proportions, shards, formats."""

import gzip
import json
import random
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from dolma_tools.config import from_dict
from dolma_tools.errors import ConfigError, DataError, UserError
from dolma_tools.mixers.config import MixConfig
from dolma_tools.mixers.runner import run_mix

DATA = Path(__file__).resolve().parents[1] / "data" / "mixers"


def write_jsonl(path: Path, lines: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        for line in lines:
            fh.write(line if isinstance(line, str) else json.dumps(line))
            fh.write("\n")
    return path


def read_jsonl(paths) -> list[dict]:
    out = []
    for path in paths:
        if str(path).endswith(".parquet"):
            import pyarrow.parquet as pq
            out.extend(pq.read_table(path).to_pylist())
            continue
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt") as fh:
            out.extend(json.loads(line) for line in fh if line.strip())
    return out


def mix(tmp_path: Path, streams: list[dict], **top) -> dict:
    cfg = from_dict(MixConfig, {"streams": streams, "debug": True, **top})
    return run_mix(cfg, progress=False)


def shards(out: Path, name: str) -> list[Path]:
    return sorted(out.glob(f"{name}-*"))


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """Documents with a blank line and a malformed line; attributes with the tagger's placeholder."""
    docs = tmp_path / "data" / "documents" / "a.jsonl.gz"
    write_jsonl(docs, [
        {"id": "1", "text": "one alpha", "source": "s"},
        "",
        "{not json",
        {"id": "2", "text": "two bob@example.com here", "source": "s"},
        {"id": "3", "text": "three", "source": "s", "metadata": {"keep": True}},
    ])
    write_jsonl(tmp_path / "data" / "attributes" / "q" / "a.jsonl.gz", [
        {"id": "1", "attributes": {"q__len": [[0, 9, 9]]}},
        {"id": None, "attributes": {}},
        "",
        {"id": "2", "attributes": {"q__len": [[0, 24, 24]], "q__email": [[4, 19, 1.0]]}},
        {"id": "3", "attributes": {"q__len": [[0, 5, 5]]}},
    ])
    return docs


def test_blank_and_malformed_lines_stay_aligned(small, tmp_path):
    out = tmp_path / "out"
    report = mix(tmp_path, [{
        "name": "s", "documents": [str(small)], "attributes": ["q"], "output": {"path": str(out)},
        "filter": {"exclude": ["$.attributes[?(@.q__len[0][2] < 6)]"]},
        "span_replacement": [{"span": "$.attributes.q__email", "min_score": 0.5, "replacement": "|||EMAIL|||"}],
    }], shuffle=False)
    docs = read_jsonl(shards(out, "s"))
    assert [d["id"] for d in docs] == ["1", "2"]
    assert docs[1]["text"] == "two |||EMAIL||| here"
    assert docs[0]["metadata"] == {"provenance": "a.jsonl.gz:1"}
    assert docs[1]["metadata"] == {"provenance": "a.jsonl.gz:4"}  # physical line numbers
    assert docs[0]["attributes"] == {"q__len": [[0, 9, 9]]}
    s = report["streams"]["s"]
    assert (s["documents_in"], s["documents_out"], s["skipped_lines"], s["spans_replaced"]) == (3, 2, 1, 1)
    assert s["removed"] == {"exclude: $.attributes[?(@.q__len[0][2] < 6)]": 1}
    assert [Path(p).name for p in s["shards"]] == ["s-0000.jsonl.gz"]
    assert json.loads((out / ".summary-mix.json").read_text())["streams"]["s"]["documents_out"] == 2


def test_truncated_document_file_keeps_what_precedes_the_damage(tmp_path):
    src = _corpus(tmp_path, "t", 400, 300)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) * 2 // 3])
    report = mix(tmp_path, [{"name": "t", "documents": [str(src)], "output": {"path": str(tmp_path / "o")}}],
                 shuffle=False)
    s = report["streams"]["t"]
    assert 100 < s["documents_out"] < 400 and s["skipped_lines"] == 1
    assert "truncated" in s["errors"][0]
    with pytest.raises(DataError, match="truncated"):
        mix(tmp_path, [{"name": "t", "documents": [str(src)], "output": {"path": str(tmp_path / "o2")}}], strict=True)


def test_missing_attribute_file_is_an_error_naming_it(small, tmp_path):
    stream = {"name": "s", "documents": [str(small)], "attributes": ["nope"], "output": {"path": str(tmp_path / "o")}}
    with pytest.raises(UserError, match=r"attributes/nope/a\.jsonl\.gz"):
        mix(tmp_path, [stream])
    report = mix(tmp_path, [stream], allow_missing_attributes=True)
    assert report["streams"]["s"]["documents_out"] == 3


def test_id_mismatch_names_file_and_line(small, tmp_path):
    attrs = tmp_path / "data" / "attributes" / "q" / "a.jsonl.gz"
    lines = gzip.open(attrs, "rt").read().splitlines()
    lines[3] = json.dumps({"id": "999", "attributes": {}})
    write_jsonl(attrs, lines)
    with pytest.raises(DataError, match=r"q/a\.jsonl\.gz:4: mismatched ids for line 4"):
        mix(tmp_path, [{"name": "s", "documents": [str(small)], "attributes": ["q"],
                        "output": {"path": str(tmp_path / "o")}}])


def test_short_attribute_file_is_an_error(small, tmp_path):
    attrs = tmp_path / "data" / "attributes" / "q" / "a.jsonl.gz"
    write_jsonl(attrs, gzip.open(attrs, "rt").read().splitlines()[:2])
    with pytest.raises(DataError, match="fewer records"):
        mix(tmp_path, [{"name": "s", "documents": [str(small)], "attributes": ["q"],
                        "output": {"path": str(tmp_path / "o")}}])


def test_config_validation_names_the_stream(tmp_path, small):
    with pytest.raises(ConfigError, match="stream 's'.*min_score"):
        mix(tmp_path, [{"name": "s", "documents": [str(small)], "output": {"path": str(tmp_path)},
                        "span_replacement": [{"span": "$.attributes.x"}]}])
    with pytest.raises(ConfigError, match="JSONPath"):
        mix(tmp_path, [{"name": "s", "documents": [str(small)], "output": {"path": str(tmp_path)},
                        "filter": {"include": ["$.attributes[?(@.x <"]}}])
    with pytest.raises(ConfigError, match="unknown config key `streams\\[0\\].output.pth`"):
        mix(tmp_path, [{"name": "s", "documents": [str(small)], "output": {"pth": "x"}}])


def _corpus(tmp_path: Path, name: str, n: int, size: int) -> Path:
    rng = random.Random(name)
    return write_jsonl(tmp_path / "src" / "documents" / name / "part.jsonl.gz",
                       [{"id": f"{name}-{i}", "text": "".join(rng.choices("abcdefgh ", k=size + i % 17))}
                        for i in range(n)])


def test_sampling_is_seeded_and_reproducible(tmp_path):
    src = _corpus(tmp_path, "a", 2000, 40)
    def run(out, seed, **extra):
        mix(tmp_path, [{"name": "a", "documents": [str(src)], "output": {"path": str(tmp_path / out)}, **extra}],
            seed=seed, shuffle=False)
        return [d["id"] for d in read_jsonl(shards(tmp_path / out, "a"))]
    first, again, other = run("o1", 1, sample=0.25), run("o2", 1, sample=0.25), run("o3", 2, sample=0.25)
    assert first == again and first != other
    assert 400 < len(first) < 600
    up = run("o4", 1, upsample=2.5)
    assert 4700 < len(up) < 5300 and set(up) == {f"a-{i}" for i in range(2000)}


def test_target_mix_hits_proportions(tmp_path, dev_corpus):
    streams = [{"name": name, "documents": [str(dev_corpus / path)], "output": {"path": str(tmp_path / "out")}}
               for name, path in (("news", "news/*.gz"), ("reviews", "reviews/reviews-0000.json.gz"),
                                  ("forums", "forums/*.gz"))]
    target = {"news": 0.5, "reviews": 0.3, "forums": 0.2}
    report = mix(tmp_path, streams, target_mix=target, total_tokens=2_500_000, seed=7)
    total = sum(s["text_bytes_out"] for s in report["streams"].values())
    for name, share in target.items():
        assert abs(report["streams"][name]["proportion"] - share) < 0.01
        on_disk = sum(len(d["text"].encode()) for d in read_jsonl(shards(tmp_path / "out", name)))
        assert on_disk == report["streams"][name]["text_bytes_out"]
    assert abs(total / 4 - 2_500_000) / 2_500_000 < 0.01
    assert report["streams"]["forums"]["rate"] > 1  # forums is upsampled to reach its share


def test_shards_cut_by_size_and_independent_of_workers(tmp_path, ray_session):
    srcs = [_corpus(tmp_path, f"s{k}", 300, 300) for k in range(3)]
    def run(out, **top):
        mix(tmp_path, [{"name": "m", "documents": [str(s) for s in srcs],
                        "output": {"path": str(tmp_path / out), "max_size_in_bytes": 20_000}}], shuffle=True, **top)
        return shards(tmp_path / out, "m")
    in_process = run("debug")
    cfg = from_dict(MixConfig, {"streams": [{"name": "m", "documents": [str(s) for s in srcs],
                    "output": {"path": str(tmp_path / "ray"), "max_size_in_bytes": 20_000}}], "processes": 2})
    run_mix(cfg, progress=False)
    on_ray = shards(tmp_path / "ray", "m")
    assert len(in_process) > 3 and all(p.name.endswith(".jsonl.gz") for p in in_process)
    assert [p.name for p in in_process] == [p.name for p in on_ray]
    assert [p.read_bytes() for p in in_process] == [p.read_bytes() for p in on_ray]
    assert len(read_jsonl(in_process)) == 900
    assert not list((tmp_path / "debug").glob(".staging-*"))


def test_plain_copy_zst_and_parquet_outputs(tmp_path, small):
    out = tmp_path / "out"
    mix(tmp_path, [{"name": "z", "documents": [str(small)], "output": {"path": str(out), "discard_fields": ["source"]},
                    "compression": {"output": "zst"}},
                   {"name": "p", "documents": [str(small)], "attributes": ["q"],
                    "output": {"path": str(out), "format": "parquet"}}])
    zst = shards(out, "z")
    assert [p.name for p in zst] == ["z-0000.jsonl.zst"]
    import zstandard
    docs = [orjson.loads(line) for line in zstandard.decompress(zst[0].read_bytes(), max_output_size=1 << 20).splitlines()]
    assert sorted(d["id"] for d in docs) == ["1", "2", "3"] and all("source" not in d for d in docs)
    rows = sorted(read_jsonl(shards(out, "p")), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert rows[2]["metadata"] == {"keep": True, "provenance": "a.jsonl.gz:5"}
    assert rows[1]["attributes"]["q__email"] == [[4, 19, 1.0]] and rows[0]["attributes"]["q__email"] is None


def test_rerun_skips_finished_streams_and_redoes_changed_ones(tmp_path, small):
    out = tmp_path / "out"
    stream = {"name": "s", "documents": [str(small)], "output": {"path": str(out)}}
    mix(tmp_path, [stream])
    shard = shards(out, "s")[0]
    stamp = shard.stat().st_mtime_ns
    mix(tmp_path, [stream])
    assert shard.stat().st_mtime_ns == stamp
    mix(tmp_path, [{**stream, "output": {"path": str(out), "min_text_length": 6}}])
    assert [d["id"] for d in read_jsonl(shards(out, "s"))] != ["1", "2", "3"]


def test_cli_runs_a_dolma_config(tmp_path, monkeypatch):
    from dolma_tools.cli import cli

    monkeypatch.setenv("MIX_ROOT", str(DATA / "source"))
    monkeypatch.setenv("MIX_OUT", str(tmp_path))
    config = DATA / "configs" / "email-spans.yaml"
    result = CliRunner().invoke(cli, ["-c", str(config), "mix", "--debug", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "email-spans").glob("*.gz")] == ["email-spans-0000.jsonl.gz"]
    result = CliRunner().invoke(cli, ["mix", "-c", str(config), "--dryrun"])
    assert result.exit_code == 0 and "email-spans" in result.output


def test_mix_reads_and_writes_s3(s3_server, tmp_path):
    s3_server.create_bucket(Bucket="mix")
    client = s3_server
    source = DATA / "source"
    for path in sorted(source.rglob("*.json.gz")):
        client.upload_file(str(path), "mix", f"ds/{path.relative_to(source)}")
    srcs = [_corpus(tmp_path, "big", 200, 300)]
    client.upload_file(str(srcs[0]), "mix", "ds/documents/big/part.jsonl.gz")
    report = mix(tmp_path, [
        {"name": "email", "documents": ["s3://mix/ds/documents/web/*.json.gz"], "attributes": ["pii"],
         "output": {"path": "s3://mix/out"},
         "span_replacement": [{"span": "$.attributes.pii__pii_regex_with_counts_fast_v2__EMAIL_ADDRESS",
                               "min_score": 0.5, "replacement": "|||EMAIL_ADDRESS|||"}]},
        {"name": "big", "documents": ["s3://mix/ds/documents/big/*.jsonl.gz"],
         "output": {"path": "s3://mix/out", "max_size_in_bytes": 10_000}},
    ], shuffle=False)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="mix", Prefix="out/")["Contents"])
    assert "out/email-0000.jsonl.gz" in keys and not [k for k in keys if ".staging-" in k]
    assert len([k for k in keys if k.startswith("out/big-")]) == len(report["streams"]["big"]["shards"]) > 2
    client.download_file("mix", "out/email-0000.jsonl.gz", str(tmp_path / "email.jsonl.gz"))
    expected = read_jsonl([DATA / "expected" / "email-spans.json.gz"])
    assert read_jsonl([tmp_path / "email.jsonl.gz"]) == expected


def test_demo_config_is_valid(monkeypatch, tmp_path):
    from dolma_tools.config import build_config
    from dolma_tools.mixers.config import validate
    from dolma_tools.mixers.streams import CompiledStream

    monkeypatch.setenv("DEMO_OUT", str(tmp_path))
    cfg = build_config(MixConfig, str(DATA / "demo-mix.yaml"), [])
    validate(cfg)
    assert [CompiledStream.build(s).config.name for s in cfg.streams] == ["web", "speeches", "multilingual"]


def test_jq_errors_are_counted_or_fatal_under_strict(small, tmp_path):
    stream = {"name": "j", "documents": [str(small)], "output": {"path": str(tmp_path / "o")},
              "filter": {"syntax": "jq", "exclude": ['if .id == "2" then error("boom") else false end']}}
    report = mix(tmp_path, [stream])
    assert report["streams"]["j"]["pattern_errors"] == 1 and report["streams"]["j"]["documents_out"] == 3
    clean = _corpus(tmp_path, "c", 5, 10)
    strict = {**stream, "documents": [str(clean)], "output": {"path": str(tmp_path / "o2")},
              "filter": {"syntax": "jq", "exclude": ['if .id == "c-2" then error("boom") else false end']}}
    with pytest.raises(DataError, match=r"part\.jsonl\.gz:3: jq pattern .* failed: boom"):
        mix(tmp_path, [strict], strict=True)
