"""Registry, specs and options, and the non-Dolma taggers (top-3 language id, FineWeb, profanity,
fastText classifier), plus Gopher's vectorised n-grams against a direct implementation."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from dolma_tools.errors import UserError
from dolma_tools.taggers import Document, catalogue, get_tagger, parse_tagger_spec, register
from dolma_tools.taggers.base import Tagger
from dolma_tools.taggers.language import default_lid_model, load_fasttext
from dolma_tools.taggers.quality import gopher_attributes, ngram_statistics

DOLMA_NAMES = ["ft_lang_id_doc_v1", "ft_lang_id_en_doc_v2", "ft_lang_id_en_paragraph_v2",
               "ft_lang_id_en_paragraph_with_doc_score_v2", "c4_v1", "c4_v2", "gopher_v1", "gopher_v2",
               "char_length_v1", "char_length_with_paragraphs_v1", "char_length_strip_ws_v1",
               "whitespace_tokenizer_v1", "random_number_v1", "repetitions_v1", "pii_regex_v1", "pii_regex_v2",
               "pii_regex_with_counts_v2", "pii_regex_with_counts_fast_v2"]
OURS = ["ft_lang_id_top3_doc", "fineweb_v1", "profanity_doc_v1", "profanity_sentence_v1", "fasttext_classifier",
        "pii_v1"]


def test_catalogue_has_every_name_with_a_description():
    names = catalogue()
    for name in DOLMA_NAMES + OURS:
        assert name in names, name
        assert names[name].description, name


def test_spec_parsing_and_unknown_options():
    spec = parse_tagger_spec("ft_lang_id_doc_v1:model=/m/lid.bin,as=lid_big")
    assert (spec.name, spec.option_dict(), spec.key_name) == ("ft_lang_id_doc_v1", {"model": "/m/lid.bin"}, "lid_big")
    with pytest.raises(UserError, match="no option 'colour'"):
        get_tagger("c4_v2:colour=red")
    with pytest.raises(UserError, match="key=value"):
        parse_tagger_spec("c4_v2:oops")
    with pytest.raises(UserError, match="unknown tagger"):
        get_tagger("no_such_tagger")


def test_instances_are_cached_per_process():
    assert get_tagger("ft_lang_id_top3_doc") is get_tagger("ft_lang_id_top3_doc")


def test_top3_language_matches_raw_fasttext():
    docs = [Document("en", "The quick brown fox jumps over the lazy dog.\nIt was a sunny day."),
            Document("fr", "Le renard brun saute par-dessus le chien paresseux."),
            Document("de", "Der schnelle braune Fuchs springt über den faulen Hund.")]
    out = get_tagger("ft_lang_id_top3_doc").tag_batch(docs)
    model = load_fasttext(default_lid_model())
    for doc, result in zip(docs, out):
        labels, probs = model.predict(doc.text.lower().replace("\n", " ").strip(), k=3)
        assert list(result) == [lab.removeprefix("__label__") for lab in labels]
        assert [spans[0][2] for spans in result.values()] == pytest.approx(list(probs), abs=1e-7)
        assert next(iter(result)) == doc.id


def test_language_model_option_points_at_another_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        get_tagger("ft_lang_id_top3_doc:model=" + str(tmp_path / "missing.bin"))
    same = get_tagger("ft_lang_id_top3_doc:model=" + default_lid_model())
    assert same.tag_batch([Document("a", "hello world, this is english")])[0].keys() == \
        get_tagger("ft_lang_id_top3_doc").tag_batch([Document("a", "hello world, this is english")])[0].keys()


def _gopher_ngrams_direct(words):
    """Dolma's definitions written directly (Counter over tuples)."""
    chars = sum(len(w) for w in words)
    common, dup = {}, {}
    for n in range(2, 11):
        counts = Counter(zip(*[words[i:] for i in range(n)]))
        if not counts:
            continue
        if n <= 4:
            gram, c = counts.most_common(1)[0]
            common[n] = c * sum(map(len, gram)) / max(chars, 1)
        else:
            total = sum(c * sum(map(len, g)) for g, c in counts.items())
            dup[n] = sum(c * sum(map(len, g)) for g, c in counts.items() if c > 1) / max(total, 1)
    return common, dup


@pytest.mark.parametrize("seed", range(25))
def test_vectorised_ngrams_equal_direct_counting(seed):
    rng = random.Random(seed)
    vocab = ["a", "bb", "ccc", "the", "of", "dddd", "e"][: rng.randint(1, 7)]
    words = [rng.choice(vocab) for _ in range(rng.randint(0, 60))]
    lengths = np.array([len(w) for w in words], dtype=np.int64)
    assert ngram_statistics(words, lengths) == _gopher_ngrams_direct(words)


def test_gopher_empty_and_short_documents():
    assert gopher_attributes("")["word_count"] == [(0, 0, 0.0)]
    out = gopher_attributes("one")
    assert "fraction_of_characters_in_most_common_2grams" not in out and out["word_count"] == [(0, 3, 1.0)]


def test_fineweb_rules():
    good = "This is a complete sentence with enough words in it.\nAnother full line that ends properly here.\n"
    bad = "menu\nhome\nabout\nmenu\nhome\ncontact\n"
    out_good, out_bad = get_tagger("fineweb_v1").tag_batch([Document("g", good), Document("b", bad)])
    assert "fails" not in out_good and out_good["line_punct_ratio"][0][2] == 1.0
    assert out_bad["fails"] == [(0, len(bad), 1.0)]
    assert out_bad["short_line_ratio"][0][2] == 1.0
    assert out_bad["char_dup_ratio"][0][2] == pytest.approx(8 / (len(bad) - 6))


def test_c4_naughty_words_from_the_list():
    c4 = get_tagger("c4_v2")
    clean, dirty, phrase = c4.tag_batch([Document("a", "A clean sentence."), Document("b", "what a boob here"),
                                         Document("c", "She said 2 girls 1 cup once.")])
    assert "has_naughty_word" not in clean
    assert dirty["has_naughty_word"] == [(0, 16, 1.0)]  # whole tokens only: "boob." would not count
    assert "has_naughty_word" in phrase


def test_profanity_document_and_sentence():
    docs = [Document("ok", "We had a lovely picnic in the park."),
            Document("bad", "Have a nice day. You are a fucking idiot!")]
    ok, bad = get_tagger("profanity_doc_v1").tag_batch(docs)
    assert ok["profanity"][0][2] < 0.5 < bad["profanity"][0][2]
    _, sent = get_tagger("profanity_sentence_v1").tag_batch(docs)
    (s1, e1, p1), (s2, e2, p2) = sent["profanity"]
    assert docs[1].text[s1:e1] == "Have a nice day." and p1 < 0.5 < p2
    assert sent["doc_max_profanity"][0][2] == p2


def test_train_fasttext_then_classify(tmp_path):
    rng = random.Random(0)
    good = ["the committee published a detailed report on the economy", "researchers measured the results carefully",
            "the article explains the history of the city", "students studied the theorem and its proof"]
    spam = ["click here buy now cheap pills", "free money win prize click now", "buy cheap watches now click",
            "win free iphone click here now"]
    path = tmp_path / "labelled.jsonl"
    with open(path, "w") as f:
        for i in range(400):
            label, pool = ("hq", good) if i % 2 else ("spam", spam)
            f.write(json.dumps({"text": rng.choice(pool) + " " + rng.choice(pool), "label": label}) + "\n")
        f.write("not json\n")
        f.write(json.dumps({"text": "no label here"}) + "\n")
    model = tmp_path / "q.bin"
    # through the CLI, in a fresh process: after other libraries of the test session have been
    # loaded, fastText's training diverges ("Encountered NaN") in this process (global CPU
    # floating-point state), which a user's `dolma train-fasttext` never sees
    proc = subprocess.run([sys.executable, "-m", "dolma_tools", "train-fasttext", "--documents", str(path),
                           "--model_path", str(model), "--epoch", "20", "--lr", "0.2", "--dim", "16",
                           "--bucket", "20000"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "q.bin.metrics.json").read_text())
    assert metrics["skipped_records"] == 2 and metrics["labels"] == {"hq": 200, "spam": 200}
    assert metrics["validation_precision_at_1"] > 0.9
    assert metrics["train_records"] > 300
    out = get_tagger(f"fasttext_classifier:model={model}").tag_batch(
        [Document("a", "the report explains the economy"), Document("b", "click here buy cheap pills now")])
    assert out[0]["__label__hq"][0][2] > 0.5 and out[1]["__label__spam"][0][2] > 0.5
    para = get_tagger(f"fasttext_classifier:model={model},mode=paragraph").tag_batch(
        [Document("c", "the report explains the economy\nclick here buy now\n")])[0]
    assert [s[:2] for s in para["__label__hq"]] == [(0, 32), (32, 51)]


def test_custom_tagger_registration():
    @register("test_custom_upper_v1", "fraction of upper-case characters")
    class Upper(Tagger):
        def tag(self, doc):
            n = len(doc.text)
            return {"upper": [(0, n, sum(c.isupper() for c in doc.text) / max(n, 1))]}

    assert get_tagger("test_custom_upper_v1").tag_batch([Document("a", "ABcd")]) == [{"upper": [(0, 4, 0.5)]}]
