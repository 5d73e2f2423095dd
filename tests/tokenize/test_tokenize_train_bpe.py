"""`dolma train-tokenizer`, and `dolma tokens` with the trained tokenizer."""

from __future__ import annotations

import json

from dolma_tools.config import build_config
from dolma_tools.io.documents import iter_documents
from dolma_tools.tokenize import TokenShards, load_tokenizer
from dolma_tools.tokenize.config import TokensConfig
from dolma_tools.tokenize.fastpath import eligible
from dolma_tools.tokenize.runner import run_tokens
from dolma_tools.tokenize.train_bpe import TrainTokenizerConfig, run_train_tokenizer


def test_train_then_tokenize(dev_corpus, tmp_path):
    web = dev_corpus / "web" / "web-0000.json.gz"
    out = tmp_path / "tok.json"
    cfg = build_config(TrainTokenizerConfig, None, ["--documents", str(web), "--output", str(out), "--vocab_size", "600"])
    info = run_train_tokenizer(cfg)
    tok = load_tokenizer(str(out))
    assert info["vocab_size"] == tok.get_vocab_size() == 640  # padded to a multiple of 128
    assert (tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|padding|>")) == (0, 1)
    for mask in ("|||EMAIL_ADDRESS|||", "|||PHONE_NUMBER|||", "|||IP_ADDRESS|||"):
        assert len(tok.encode(f"call {mask} now").ids) == len(tok.encode("call X now").ids)
    assert eligible(json.loads(tok.to_str()))

    tcfg = build_config(TokensConfig, None, ["--documents", str(web), "--destination", str(tmp_path / "tokens"),
                                            "--tokenizer.name_or_path", str(out), "--debug"])
    run_tokens(tcfg, progress=False)
    shards = TokenShards(tmp_path / "tokens")
    assert shards.manifest["eos_token_id"] == 0 and shards.manifest["padded_vocab_size"] == 640
    texts = {line: d["text"].strip() for line, d in iter_documents(str(web))}
    for doc in shards.iter_documents():
        assert doc.tokens.tolist() == tok.encode(texts[doc.loc]).ids + [0]
        assert tok.decode(doc.tokens[:-1].tolist()) == texts[doc.loc]
