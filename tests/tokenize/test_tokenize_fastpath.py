"""The ASCII fast path gives exactly the ids of `tokenizers` (random text, tricky cases, dev corpus)."""

from __future__ import annotations

import functools
import gzip
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolma_tools.tokenize import load_tokenizer
from dolma_tools.tokenize.encode import DocumentEncoder, EncodingSettings
from dolma_tools.tokenize.fastpath import AsciiFastEncoder, eligible
from dolma_tools.tokenize.tokenizers import resolve_tokenizer

NAMES = ["allenai/gpt-neox-olmo-dolma-v1_5", "allenai/eleuther-ai-gpt-neox-20b-pii-special"]
TRICKY = [
    "a  b", "a" + " " * 30 + "b", " " * 25 + "x", "x" + " " * 24, "it's we're I'M 'll 'S",
    "<|endoftext|>", "x<|endoftext|>y<|padding|>", "|||EMAIL_ADDRESS|||@|||PHONE_NUMBER|||",
    "tab\t\tand\x0bvt\x0cff\r\ncrlf", "ctl\x1c\x1d\x1e\x1f sep", "\x00nul", "123456 7.5e-3 $99",
    "x \n\n  y", "end   ", "  <|endoftext|>  ", "a\n \n b", "||||||IP_ADDRESS|||||",
]
ALPHABET = st.sampled_from(list("ab Z09'.,!-\n\t\r\x0b\x1c_|<>") + ["  ", "   ", "<|endoftext|>", "'s",
                                                                  "|||IP_ADDRESS|||", "\n\n"])


@pytest.fixture(scope="module", params=NAMES)
def pair(request):
    tok = load_tokenizer(request.param)
    config = json.loads(tok.to_str())
    assert eligible(config)
    return tok, AsciiFastEncoder(tok, config, encode_special_tokens=False)


def test_tricky_cases(pair):
    tok, fast = pair
    assert fast.encode_batch(TRICKY) == [e.ids for e in tok.encode_batch(TRICKY, add_special_tokens=False)]


@functools.lru_cache(maxsize=1)
def _dolma_v15():
    tok = load_tokenizer(NAMES[0])
    return tok, AsciiFastEncoder(tok, json.loads(tok.to_str()), encode_special_tokens=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_random_ascii(text):
    tok, fast = _dolma_v15()
    assert fast.encode_batch([text]) == [tok.encode(text, add_special_tokens=False).ids]


def test_encode_special_tokens_as_text():
    tok = load_tokenizer(NAMES[0])
    tok.encode_special_tokens = True
    fast = AsciiFastEncoder(tok, json.loads(tok.to_str()), encode_special_tokens=True)
    assert fast.encode_batch(TRICKY) == [e.ids for e in tok.encode_batch(TRICKY, add_special_tokens=False)]


def test_dev_corpus_sample_both_paths_agree(dev_corpus):
    texts = []
    for path in sorted(dev_corpus.glob("*/*.json.gz")):
        with gzip.open(path) as fh:
            texts += [orjson.loads(line)["text"].strip() for _, line in zip(range(12), fh)]
    resolved = resolve_tokenizer(None)
    base = dict(tokenizer=resolved, eos_token_id=50279, bos_token_id=None, dtype="uint16")
    fast = DocumentEncoder(EncodingSettings(**base, ascii_fast_path=True)).encode(texts)
    slow = DocumentEncoder(EncodingSettings(**base, ascii_fast_path=False)).encode(texts)
    assert fast[0].tolist() == slow[0].tolist() and fast[1].tolist() == slow[1].tolist()
    assert any(t.isascii() for t in texts) and not all(t.isascii() for t in texts)
