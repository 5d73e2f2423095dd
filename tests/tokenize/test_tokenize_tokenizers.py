"""Offline tokenizer resolution, OLMo's EOS trap, dtype and vocabulary rules."""

from __future__ import annotations

import pytest

from dolma_tools.errors import UserError
from dolma_tools.tokenize import load_tokenizer
from dolma_tools.tokenize.tokenizers import (
    check_eos,
    choose_dtype,
    known_special_ids,
    olmo_eval_tokenizer_dir,
    padded_vocab_size,
    resolve_tokenizer,
    special_tokens,
    vocab_size,
)

DOLMA_V15 = "allenai/gpt-neox-olmo-dolma-v1_5"
PII_SPECIAL = "allenai/eleuther-ai-gpt-neox-20b-pii-special"


def test_bundled_names_load_offline_with_documented_ids():
    tok = load_tokenizer(DOLMA_V15)
    assert vocab_size(tok) == 50280 and padded_vocab_size(50280) == 50304
    assert tok.token_to_id("<|endoftext|>") == 50279
    assert known_special_ids(DOLMA_V15) == known_special_ids(None)
    assert (known_special_ids(DOLMA_V15).eos, known_special_ids(DOLMA_V15).pad) == (50279, 1)
    assert (known_special_ids(PII_SPECIAL).eos, known_special_ids(PII_SPECIAL).pad) == (0, 1)
    specials = special_tokens(tok)
    assert specials["<|endoftext|>"] == 50279 and specials["|||EMAIL_ADDRESS|||"] == 50277
    assert specials["|||PHONE_NUMBER|||"] == 50278 and specials["|||IP_ADDRESS|||"] == 0


def test_a_path_to_a_bundled_file_is_recognised():
    path = olmo_eval_tokenizer_dir() / "allenai_eleuther-ai-gpt-neox-20b-pii-special.json"
    resolved = resolve_tokenizer(str(path))
    assert resolved.known_name == PII_SPECIAL
    assert known_special_ids(str(path)).eos == 0


def test_load_returns_independent_objects():
    a, b = load_tokenizer(None), load_tokenizer(None)
    a.encode_special_tokens = True
    assert b.encode_special_tokens is False


@pytest.mark.parametrize("name,eos,expected", [
    (DOLMA_V15, 0, "not its end-of-text token id 50279"),
    (DOLMA_V15, 1, "--tokenizer.eos_token_id 50279"),
    (PII_SPECIAL, 50279, "'|||IP_ADDRESS|||'"),
    (DOLMA_V15, 60000, "outside the vocabulary"),
])
def test_wrong_eos_is_a_user_error(name, eos, expected):
    with pytest.raises(UserError, match=expected.replace("|", r"\|").replace("(", r"\(")):
        check_eos(load_tokenizer(name), eos, name, expected=known_special_ids(name).eos)


def test_unknown_name_is_not_downloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(UserError, match="not in the local Hugging Face cache"):
        load_tokenizer("someone/not-a-cached-tokenizer")


def test_hub_name_from_local_cache(monkeypatch, tmp_path):
    """A Hub name resolves when its tokenizer.json is in the HF cache layout."""
    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--tok" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (cache / "models--someone--tok" / "refs").mkdir()
    (cache / "models--someone--tok" / "refs" / "main").write_text("a" * 40)
    source = olmo_eval_tokenizer_dir() / "allenai_gpt-neox-olmo-dolma-v1_5.json"
    (snapshot / "tokenizer.json").write_bytes(source.read_bytes())
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    resolved = resolve_tokenizer("someone/tok")
    assert resolved.known_name == DOLMA_V15


def test_dtype_rule():
    assert choose_dtype(None, 50280, "t") == "uint16"
    assert choose_dtype(None, 100278, "t") == "uint32"
    assert choose_dtype("uint32", 50280, "t") == "uint32"
    with pytest.raises(UserError, match="use --dtype uint32"):
        choose_dtype("uint16", 100278, "t")
    with pytest.raises(UserError):
        choose_dtype("int16", 100, "t")
