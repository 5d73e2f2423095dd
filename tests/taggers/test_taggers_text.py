"""dolma_tools.text: the segmentation every stage shares."""

from hypothesis import given, settings
from hypothesis import strategies as st

from dolma_tools.text import lines, paragraphs, sentences, whitespace_words, word_ngrams


def test_paragraphs_dolma_definition():
    text = "one\n\n  \ntwo\nthree"
    assert [(p.start, p.end, p.text) for p in paragraphs(text)] == [(0, 4, "one\n"), (8, 12, "two\n"),
                                                                    (12, 17, "three")]
    assert len(paragraphs(text, keep_empty=True)) == 5


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab \n.!?\"", max_size=60))
def test_paragraphs_with_empty_tile_the_text_and_sentences_are_trimmed(text):
    parts = paragraphs(text, keep_empty=True)
    assert "".join(p.text for p in parts) == text
    for s in sentences(text):
        assert s.text == text[s.start:s.end] == s.text.strip() and s.text


def test_sentences_keep_abbreviations_and_closing_quotes():
    text = 'Dr. Smith met J. R. Tolkien. "It was 5 p.m. sharp." Then rain!\nNext line'
    assert [s.text for s in sentences(text)] == ["Dr. Smith met J. R. Tolkien.", '"It was 5 p.m. sharp."', "Then rain!",
                                                 "Next line"]


def test_lines_words_ngrams():
    assert [(seg.start, seg.end) for seg in lines("a\nb\n")] == [(0, 2), (2, 4), (4, 4)]
    assert whitespace_words(" a  b\tc ") == ["a", "b", "c"]
    assert word_ngrams(["a", "b", "c"], 2) == [("a", "b"), ("b", "c")]
