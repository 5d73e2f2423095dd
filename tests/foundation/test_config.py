"""Config files + dotted overrides -> typed dataclasses, with precedence defaults < file < flags."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from dolma_tools.config import RuntimeConfig, build_config, option, parse_overrides
from dolma_tools.errors import ConfigError


@dataclass
class BloomConfig:
    file: str | None = option(None)
    read_only: bool = option(False)
    size_in_bytes: int = option(0)
    desired_false_positive_rate: float = option(0.0)


@dataclass
class NgramConfig:
    ngram_length: int = option(0)
    overlap_threshold: float = option(1.0, aliases=("threshold",))


@dataclass
class ExampleConfig(RuntimeConfig):
    documents: list[str] = option(default_factory=list, required=True)
    name: str = option("default-name")
    bloom_filter: BloomConfig = option(default_factory=BloomConfig)
    by_ngram: NgramConfig = option(default_factory=NgramConfig)
    weights: dict[str, float] = option(default_factory=dict)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_then_file_then_flags(tmp_path):
    cfg_file = write(tmp_path, "c.yaml", "documents: [a.gz, b.gz]\nname: from-file\n"
                     "bloom_filter:\n  file: f.bin\n  size_in_bytes: 1024\n")
    cfg = build_config(ExampleConfig, cfg_file, ["--bloom_filter.size_in_bytes", "2048", "--processes", "3"])
    assert cfg.documents == ["a.gz", "b.gz"]
    assert cfg.name == "from-file"                  # file beats default
    assert cfg.bloom_filter.file == "f.bin"         # file value kept when no flag
    assert cfg.bloom_filter.size_in_bytes == 2048   # flag beats file
    assert cfg.processes == 3
    assert cfg.bloom_filter.read_only is False      # default


def test_json_config_and_bool_flags(tmp_path):
    cfg_file = write(tmp_path, "c.json", json.dumps({"documents": ["x"], "bloom_filter": {"read_only": True}}))
    assert build_config(ExampleConfig, cfg_file, []).bloom_filter.read_only is True
    assert build_config(ExampleConfig, cfg_file, ["--no-bloom_filter.read_only"]).bloom_filter.read_only is False
    assert build_config(ExampleConfig, None, ["--documents", "x", "--strict"]).strict is True


def test_list_flags_take_several_values_and_hyphens_normalise():
    cfg = build_config(ExampleConfig, None, ["--documents", "a", "b", "c", "--ignore-existing"])
    assert cfg.documents == ["a", "b", "c"]
    assert cfg.ignore_existing is True


def test_alias_keys_and_mapping_flags():
    cfg = build_config(ExampleConfig, None, ["--documents", "a", "--by_ngram.threshold", "0.5",
                                             "--weights", "{web: 0.7, books: 0.3}"])
    assert cfg.by_ngram.overlap_threshold == 0.5
    assert cfg.weights == {"web": 0.7, "books": 0.3}


@pytest.mark.parametrize("argv, message", [
    (["--documents", "a", "--bloom_filter.size_in_bytes", "big"], "`bloom_filter.size_in_bytes`: expected an integer, got 'big'"),
    (["--documents", "a", "--processes", "1.5"], "`processes`: expected an integer or null"),
    (["--documents", "a", "--bogus", "1"], "unknown option --bogus"),
    (["--documents", "a", "--no-name"], "--no-name only applies to boolean options"),
    ([], "missing required config key `documents`"),
])
def test_validation_errors_name_the_key_and_type(argv, message):
    with pytest.raises(ConfigError) as info:
        build_config(ExampleConfig, None, argv)
    assert message in str(info.value)


def test_unknown_key_in_file_is_named(tmp_path):
    cfg_file = write(tmp_path, "c.yaml", "documents: [a]\nbloom_filter:\n  fil: x\n")
    with pytest.raises(ConfigError, match=r"unknown config key `bloom_filter.fil`"):
        build_config(ExampleConfig, cfg_file, [])


def test_missing_and_invalid_config_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        build_config(ExampleConfig, str(tmp_path / "nope.yaml"), [])
    bad = write(tmp_path, "bad.yaml", "documents: [a\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build_config(ExampleConfig, bad, [])


def test_dolma_resolvers(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    for name in ("1.jsonl", "2.jsonl"):
        (tmp_path / "d" / name).write_text("{}\n")
    monkeypatch.setenv("MY_NAME", "from-env")
    cfg_file = write(tmp_path, "c.yaml", f"documents: ['${{d.glob:{tmp_path}/d/*.jsonl}}']\n"
                     "name: ${oc.env:MY_NAME}\nprocesses: ${d.processes:0}\n")
    cfg = build_config(ExampleConfig, cfg_file, [])
    assert cfg.documents == [f"{tmp_path}/d/1.jsonl", f"{tmp_path}/d/2.jsonl"]
    assert cfg.name == "from-env"
    assert cfg.processes >= 1


def test_parse_overrides_inline_values_and_negative_numbers():
    out = parse_overrides(ExampleConfig, ["--bloom_filter.desired_false_positive_rate=1e-5",
                                          "--by_ngram.overlap_threshold", "-0.5"])
    assert out == {"bloom_filter": {"desired_false_positive_rate": 1e-5}, "by_ngram": {"overlap_threshold": -0.5}}
