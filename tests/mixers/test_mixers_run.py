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
from dolma_tools.mixers.streams import MisalignedAttributesError

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


def outputs(report: dict, name: str) -> list[Path]:
    """The files a stream wrote, in order (shards, or with shuffle: false one file per input)."""
    return [Path(p) for p in report["streams"][name]["shards"]]


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
    assert outputs(report, "s") == [out / "documents" / "a.jsonl.gz"]
    docs = read_jsonl(outputs(report, "s"))
    assert [d["id"] for d in docs] == ["1", "2"]
    assert docs[1]["text"] == "two |||EMAIL||| here"
    assert docs[0]["metadata"] == {"provenance": "a.jsonl.gz:1"}
    assert docs[1]["metadata"] == {"provenance": "a.jsonl.gz:4"}  # physical line numbers
    assert docs[0]["attributes"] == {"q__len": [[0, 9, 9]]}
    s = report["streams"]["s"]
    assert (s["documents_in"], s["documents_out"], s["skipped_lines"], s["spans_replaced"]) == (3, 2, 1, 1)
    assert s["removed"] == {"exclude: $.attributes[?(@.q__len[0][2] < 6)]": 1}
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


def _aligned(tmp_path: Path, n: int = 6) -> tuple[Path, Path]:
    docs = write_jsonl(tmp_path / "d" / "documents" / "f.jsonl.gz",
                       [{"id": f"d{i}", "text": f"text {i}", "metadata": {"n": i}} for i in range(n)])
    attrs = write_jsonl(tmp_path / "d" / "attributes" / "q" / "f.jsonl.gz",
                        [{"id": f"d{i}", "attributes": {"q__odd": [[0, 6, i % 2]]}} for i in range(n)])
    return docs, attrs


def _odd_stream(docs: Path, out: Path) -> dict:
    return {"name": "s", "documents": [str(docs)], "attributes": ["q"], "output": {"path": str(out)},
            "filter": {"exclude": ["$.attributes[?(@.q__odd && @.q__odd[0] && @.q__odd[0][2] == 1)]"]}}


def test_id_mismatch_is_fatal_with_or_without_strict(tmp_path):
    docs, attrs = _aligned(tmp_path)
    lines = gzip.open(attrs, "rt").read().splitlines()
    lines[3] = json.dumps({"id": "999", "attributes": {}})
    write_jsonl(attrs, lines)
    for strict in (False, True):
        with pytest.raises(MisalignedAttributesError,
                           match=r"q/f\.jsonl\.gz:4: mismatched ids for line 4 .* '999' != 'd3'"):
            mix(tmp_path, [_odd_stream(docs, tmp_path / f"o{strict}")], strict=strict)


def test_id_mismatch_through_the_cli_exits_1_without_a_strict_hint(tmp_path, capsys):
    from dolma_tools.cli import main

    docs, attrs = _aligned(tmp_path)
    lines = gzip.open(attrs, "rt").read().splitlines()
    lines[0] = json.dumps({"id": "x", "attributes": {}})
    write_jsonl(attrs, lines)
    config = tmp_path / "mix.json"
    config.write_text(json.dumps({"streams": [_odd_stream(docs, tmp_path / "o")]}))
    with pytest.raises(SystemExit) as exit_info:
        main(["mix", "-c", str(config), "--debug"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "mismatched ids for line 1" in err and "--strict" not in err


def test_short_attribute_file_mixes_the_rest_without_attributes_as_dolma(tmp_path, caplog):
    """Dolma 1.2.1 logs `Missing attributes ... at line N` and mixes the rest with `attributes: {}`."""
    docs, attrs = _aligned(tmp_path)
    lines = gzip.open(attrs, "rt").read().splitlines()
    write_jsonl(attrs, lines[:3])
    report = mix(tmp_path, [_odd_stream(docs, tmp_path / "o")], shuffle=False)
    kept = read_jsonl(outputs(report, "s"))
    # d1 is odd; d3 and d5 have no attributes left, so the exclude cannot fire
    assert [d["id"] for d in kept] == ["d0", "d2", "d3", "d4", "d5"]
    assert [d["attributes"] for d in kept[2:]] == [{}, {}, {}]
    s = report["streams"]["s"]
    assert (s["documents_in"], s["documents_out"], s["documents_without_attributes"]) == (6, 5, 3)
    assert s["warnings"] == [f"{attrs}: attribute file has no more records after 3 record(s): the documents "
                             f"from line 4 of {docs} on are mixed without its attributes "
                             f"(--strict makes this an error)"]
    assert "mixed without its attributes" in caplog.text
    with pytest.raises(DataError, match=r"attribute file has fewer records than .*f\.jsonl\.gz "
                                        r"\(none for document line 4\)"):
        mix(tmp_path, [_odd_stream(docs, tmp_path / "o2")], shuffle=False, strict=True)


def test_long_attribute_file_is_counted(tmp_path):
    docs, attrs = _aligned(tmp_path)
    lines = gzip.open(attrs, "rt").read().splitlines()
    write_jsonl(attrs, lines + [json.dumps({"id": "d6", "attributes": {}}), json.dumps({"id": "d7"})])
    report = mix(tmp_path, [_odd_stream(docs, tmp_path / "o")], shuffle=False)
    assert [d["id"] for d in read_jsonl(outputs(report, "s"))] == ["d0", "d2", "d4"]
    s = report["streams"]["s"]
    assert s["attribute_records_without_documents"] == 2 and "2 record(s) more than" in s["warnings"][0]
    with pytest.raises(DataError, match="more records than"):
        mix(tmp_path, [_odd_stream(docs, tmp_path / "o2")], shuffle=False, strict=True)


def test_truncated_attribute_file_mixes_the_rest_without_attributes(tmp_path):
    docs, attrs = _aligned(tmp_path, 3000)
    data = attrs.read_bytes()
    attrs.write_bytes(data[: len(data) // 2])
    report = mix(tmp_path, [_odd_stream(docs, tmp_path / "o")], shuffle=False)
    s = report["streams"]["s"]
    kept = [d["id"] for d in read_jsonl(outputs(report, "s"))]
    cut = 3000 - s["documents_without_attributes"]
    assert 100 < cut < 3000 and "is cut short" in s["warnings"][0]
    assert kept == [f"d{i}" for i in range(3000) if i >= cut or i % 2 == 0]
    with pytest.raises(DataError, match="truncated"):
        mix(tmp_path, [_odd_stream(docs, tmp_path / "o2")], shuffle=False, strict=True)


def test_malformed_attribute_record_skips_its_document(tmp_path):
    docs, attrs = _aligned(tmp_path)
    lines = gzip.open(attrs, "rt").read().splitlines()
    lines[2] = "{not json"
    lines[4] = json.dumps({"id": "d4", "attributes": [1]})
    write_jsonl(attrs, lines)
    report = mix(tmp_path, [_odd_stream(docs, tmp_path / "o")], shuffle=False)
    s = report["streams"]["s"]
    assert [d["id"] for d in read_jsonl(outputs(report, "s"))] == ["d0"]
    assert s["skipped_lines"] == 2 and s["documents_in"] == 6
    assert s["errors"][0].startswith(f"{attrs}:3: malformed attribute record")
    assert s["errors"][1] == (f"{attrs}:5: `attributes` is not a JSON object; its document "
                              f"(line 5 of {docs}) is skipped")
    with pytest.raises(DataError, match=r"f\.jsonl\.gz:3: malformed attribute record"):
        mix(tmp_path, [_odd_stream(docs, tmp_path / "o2")], shuffle=False, strict=True)


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
        report = mix(tmp_path, [{"name": "a", "documents": [str(src)], "output": {"path": str(tmp_path / out)},
                                 **extra}], seed=seed, shuffle=False)
        return [d["id"] for d in read_jsonl(outputs(report, "a"))]
    first, again, other = run("o1", 1, sample=0.25), run("o2", 1, sample=0.25), run("o3", 2, sample=0.25)
    assert first == again and first != other
    assert 400 < len(first) < 600
    assert first == [i for i in run("o5", 1) if i in set(first)]  # shuffle: false keeps input order
    up = run("o4", 1, upsample=2.5)
    assert 4700 < len(up) < 5300 and set(up) == {f"a-{i}" for i in range(2000)}
    assert list(dict.fromkeys(up)) == [f"a-{i}" for i in range(2000)]  # copies are adjacent, in order


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
    ], shuffle_buffer=1)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="mix", Prefix="out/")["Contents"])
    assert "out/email-0000.jsonl.gz" in keys and not [k for k in keys if ".staging-" in k]
    assert len([k for k in keys if k.startswith("out/big-")]) == len(report["streams"]["big"]["shards"]) > 2
    client.download_file("mix", "out/email-0000.jsonl.gz", str(tmp_path / "email.jsonl.gz"))
    expected = read_jsonl([DATA / "expected" / "email-spans.json.gz"])
    assert read_jsonl([tmp_path / "email.jsonl.gz"]) == expected
    # shuffle: false: one object per input, below documents/
    mix(tmp_path, [{"name": "email", "documents": ["s3://mix/ds/documents/web/*.json.gz"], "attributes": ["pii"],
                    "output": {"path": "s3://mix/strict", "max_size_in_bytes": 10}, "filter": {"exclude": ["$.x"]}}],
        shuffle=False)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="mix", Prefix="strict/")["Contents"])
    assert [k for k in keys if not k.split("/")[-1].startswith(".")] == \
        ["strict/documents/web/web-0000.json.gz", "strict/documents/web/web-0001.json.gz"]
    assert not [k for k in keys if ".staging-" in k]


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
