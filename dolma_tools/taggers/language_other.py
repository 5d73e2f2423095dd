"""Language id with other libraries: Dolma's `langdetect_*` and `cld2_*` taggers.

Same values as Dolma 1.2.1 (its `dolma/taggers/language.py`): a library predicts (language,
score) pairs per document or per Dolma paragraph; the `_en_` taggers keep only `en` (0.0 when the
library does not name it) and add `not_en` = 1 - en; `cld2_en_paragraph_with_doc_score_v2` adds
the length-weighted `doc_en`/`doc_not_en` of our fastText tagger.

The libraries are the optional extra `langid` (`pip install 'dolma-tools[langid]'`); a tagger
whose library is missing fails before any work. Both ship their models inside the package.

- langdetect: Dolma seeds its detector with 0 before every text, so results are reproducible. We
  compute langdetect's own algorithm (its profiles, normalisation, seeded random walk) faster:
  n-grams per word instead of per character, and the random walks of many texts at once with
  numpy. Every random number and floating-point operation is the library's, in its order, so the
  probabilities are bit-identical (`tests/taggers/test_taggers_langid.py` compares with
  `langdetect.detector.Detector`). One deliberate change: profiles are loaded sorted by language
  rather than in directory-listing order (see `langdetect_factory`).
- CLD2 (pycld2): Dolma's quirks are kept because its outputs are the reference: the type is the
  first two letters of CLD2's language *name*, lowercased (`ENGLISH` -> `en`, but `GERMAN` -> `ge`,
  `SPANISH` -> `sp`), and CLD2's `Unknown` rows are kept (Dolma filters `UNKNOWN_LANGUAGE`, a name
  pycld2 never returns), giving `un` spans scored 0.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
import re
import sys
from typing import Any, Callable, Sequence

import numpy as np

from dolma_tools.taggers.base import register
from dolma_tools.taggers.language import LanguageTagger, Prediction


class LibraryLanguage(LanguageTagger):
    """A language tagger on a library of the `langid` extra."""

    packages_extra = "langid"


# --- langdetect -------------------------------------------------------------------------------------

class _NormalisedChars(dict):
    """`str.translate` table: each character through langdetect's `NGram.normalize`, computed once."""

    def __init__(self, normalize: Callable[[str], str]) -> None:
        super().__init__()
        self.normalize = normalize

    def __missing__(self, codepoint: int) -> str:
        self[codepoint] = char = self.normalize(chr(codepoint))
        return char


if sys.version_info >= (3, 12):
    def python_row_sums(p: np.ndarray) -> np.ndarray:
        """Python's `sum` of each row: compensated since 3.12, so computed by Python itself."""
        return np.array([sum(row) for row in p.tolist()])
else:
    def python_row_sums(p: np.ndarray) -> np.ndarray:
        """Python's `sum` of each row: left to right before 3.12, as numpy's accumulate (its `sum` is pairwise)."""
        return np.add.accumulate(p, axis=1)[:, -1]


def langdetect_factory(directory: str, factory_class: type) -> Any:
    """langdetect's profiles, sorted by language.

    The library (and so Dolma) loads them in directory-listing order, which depends on the
    install; that order is the order of the sum that normalises the probabilities, so it changes
    their last bits. Sorted, results are the same on every machine (and, rounded to 5 places,
    the same as for the other orders we tried; see docs/taggers.md).
    """
    names = sorted(name for name in os.listdir(directory)
                   if not name.startswith(".") and os.path.isfile(os.path.join(directory, name)))
    profiles = []
    for name in names:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            profiles.append(f.read())
    factory = factory_class()
    factory.load_json_profile(profiles)
    return factory


class RandomStream:
    """The 32-bit words of `random.Random(seed)`, in order (grown on demand).

    langdetect re-seeds its generator before every text, so all texts read this one stream, each at
    its own position, and their draws can be read for many texts at once.
    """

    WINDOW = 32  # words read per row: 5 accepted values (each word is accepted with p > 1/2) but 1 time in 10^5

    def __init__(self, seed: int, size: int = 1 << 16) -> None:
        self.seed = seed
        self.words = self.generate(size)  # 10,000 words serve a text that does not converge in 7 trials

    def generate(self, count: int) -> np.ndarray:
        # getrandbits(32 k) is k words, the first the least significant, on every platform
        data = random.Random(self.seed).getrandbits(32 * count).to_bytes(4 * count, "little")
        return np.frombuffer(data, dtype="<u4").astype(np.int64)

    def choices(self, starts: np.ndarray, n: np.ndarray, shift: np.ndarray, count: np.ndarray):
        """Per row, the first `count` of `Random._randbelow(n)` read from word `starts` (CPython takes the
        top bit_length(n) bits of a word and rejects values >= n): the values, row after row, and the
        number of words each row used."""
        width = self.WINDOW
        while True:
            if int(starts.max()) + width > len(self.words):
                self.words = self.generate(2 * (int(starts.max()) + width))
            values = self.words[starts[:, None] + np.arange(width)] >> shift[:, None]
            accepted = np.cumsum(values < n[:, None], axis=1)
            if (accepted[:, -1] >= count).all():
                break
            width *= 4
        taken = (values < n[:, None]) & (accepted <= count[:, None])
        return values[taken], np.argmax(accepted >= count[:, None], axis=1) + 1


@functools.lru_cache(maxsize=1)
def words_per_gauss() -> int:
    """Words a `gauss` that has no number in reserve takes (CPython: two `random()`s of two words; it
    keeps the second normal number for the next call)."""
    reference = random.Random(0)
    reference.gauss(0.0, 1.0)
    for words in range(1, 33):
        skipped = random.Random(0)
        skipped.getrandbits(32 * words)
        if skipped.getstate()[1] == reference.getstate()[1]:
            return words
    raise RuntimeError("random.gauss uses the generator in an unknown way")


class _TextGauss:
    """A text's own `random.Random(seed)` for its gauss draws (one per trial), brought to the text's
    position in the stream first, so the numbers (and the one kept in reserve) are Python's own."""

    __slots__ = ("rng", "position")

    def __init__(self, seed: int) -> None:
        self.rng, self.position = random.Random(seed), 0

    def draw(self, position: int) -> tuple[float, int]:
        """The gauss number drawn at stream `position`, and the position after it."""
        if position > self.position:
            self.rng.getrandbits(32 * (position - self.position))  # the words the text's choices used
        takes_words = self.rng.gauss_next is None  # CPython's reserve of the second normal number
        value = self.rng.gauss(0.0, 1.0)
        self.position = position + (words_per_gauss() if takes_words else 0)
        return value, self.position


class FastLangdetect:
    """langdetect's `Detector.get_probabilities`, same results, several times faster.

    The library walks the text one character at a time through a 3-character n-gram buffer that
    restarts at every space; so the n-grams of a text are those of its space-separated words,
    which we compute once per distinct word. Its random walk then multiplies the 55-language
    vector by the profile row of a random n-gram, normalising after the 1st update and every 5th
    until one language passes 0.99999, 7 times. We draw the same numbers from the same seeded
    generators and do the same float64 operations in the same order, but for many texts at once:
    a block of (up to) 5 updates is 5 element-wise numpy products over all texts still walking.
    Results are bit-identical to the library's.
    """

    WORD = re.compile(r"[^ ]+ ?")  # a word with the space that ends it (none at the end of the text)
    LATIN = re.compile(r"[A-z]")  # langdetect's Latin test is this range, `[\]^_` and backtick included
    # langdetect means ">= U+0300 outside Latin Extended Additional" but compares its block number
    # with a block name, so Latin Extended Additional counts too
    NON_LATIN = re.compile("[\u0300-\U0010ffff]")
    SPACES = re.compile(" {2,}")
    BLOCK = 5  # updates between two convergence checks (after the first update of a trial)
    MAX_CACHED_WORDS = 200_000
    TEXTS_PER_WALK = 2048  # texts walked together: bounds the (texts, 5, 55) factor array (4.5 MB)

    def __init__(self, factory: Any, seed: int = 0) -> None:
        """`factory`: langdetect's `DetectorFactory` with the profiles loaded (`langdetect_factory`)."""
        from langdetect.detector import Detector
        from langdetect.utils.ngram import NGram

        self.languages: list[str] = [str(lang).strip().lower() for lang in factory.langlist]
        self.gram_rows: dict[str, int] = {gram: i for i, gram in enumerate(factory.word_lang_prob_map)}
        self.gram_probs = np.array(list(factory.word_lang_prob_map.values()), dtype=np.float64)
        self.seed = seed
        defaults = Detector(factory)  # the library's settings: trials, smoothing, thresholds, text limit
        self.detector, self.max_text_length, self.n_trial = defaults, defaults.max_text_length, defaults.n_trial
        self.url, self.mail, self.normalize_vi = Detector.URL_RE, Detector.MAIL_RE, NGram.normalize_vi
        self.normalised = _NormalisedChars(NGram.normalize)
        self.stream = RandomStream(seed)
        self.word_grams: dict[str, list[int]] = {}

    def probabilities(self, texts: Sequence[str]) -> list[Prediction]:
        """Per text, (language, probability) above langdetect's threshold, most probable first;
        [] for a text without features (langdetect raises "No features in text"; Dolma writes nothing)."""
        grams = [self.ngram_rows(self.clean(self.prepare(text))) for text in texts]
        walked = [i for i, g in enumerate(grams) if g]
        out: list[Prediction] = [[] for _ in texts]
        for chunk in range(0, len(walked), self.TEXTS_PER_WALK):
            rows = walked[chunk:chunk + self.TEXTS_PER_WALK]
            for i, langprob in zip(rows, self.random_walks([grams[i] for i in rows])):
                out[i] = self.ranked(langprob)
        return out

    def prepare(self, text: str) -> str:
        """`Detector.append`: URLs and e-mails to spaces, Vietnamese normalised, cut, space runs collapsed."""
        text = self.normalize_vi(self.mail.sub(" ", self.url.sub(" ", text)))
        return self.SPACES.sub(" ", text[:self.max_text_length])

    def clean(self, text: str) -> str:
        """`Detector.cleaning_text`: drop Latin letters from a text mostly in another script."""
        if len(self.LATIN.findall(text)) * 2 < len(self.NON_LATIN.findall(text)):
            return self.LATIN.sub("", text)
        return text

    def ngram_rows(self, text: str) -> list[int]:
        """Profile rows of the text's n-grams, in the order langdetect extracts them."""
        rows: list[int] = []
        cache = self.word_grams
        if len(cache) > self.MAX_CACHED_WORDS:
            cache.clear()
        for word in self.WORD.findall(text.translate(self.normalised)):
            grams = cache.get(word)
            if grams is None:
                grams = cache[word] = self.word_ngram_rows(word)
            rows.extend(grams)
        return rows

    def word_ngram_rows(self, word: str) -> list[int]:
        """langdetect's n-grams of one word: at each character the 1-, 2- and 3-character suffixes of
        " " + word so far, except where that character and the one before are both upper case."""
        padded, rows, known = " " + word, [], self.gram_rows
        for j in range(1, len(padded)):
            if padded[j].isupper() and padded[j - 1].isupper():
                continue
            for n in range(1, min(3, j + 1) + 1):
                gram = padded[j + 1 - n:j + 1]
                if gram != " " and gram in known:
                    rows.append(known[gram])
        return rows

    def random_walks(self, texts: list[list[int]]) -> np.ndarray:
        """`Detector._detect_block` for each text (with n-grams): the average of its trials' final vectors."""
        d, n_lang, block = self.detector, len(self.languages), self.BLOCK
        sizes = np.array([len(g) for g in texts], dtype=np.int64)
        grams = np.fromiter(itertools.chain.from_iterable(texts), dtype=np.int64, count=int(sizes.sum()))
        shift = np.array([32 - len(g).bit_length() for g in texts], dtype=np.int64)
        offset = np.cumsum(sizes) - sizes
        gauss = [_TextGauss(self.seed) for _ in texts]
        trial = np.zeros(len(texts), dtype=np.int64)
        langprob = np.zeros((len(texts), n_lang))
        # the texts still walking, and for each: its vector, its trial's smoothing, its position in
        # the random stream, and the library's counter `i` at the next convergence check
        walking = np.arange(len(texts))
        prob = np.full((len(texts), n_lang), 1.0 / n_lang)
        weight, position = np.zeros(len(texts)), np.zeros(len(texts), dtype=np.int64)
        self.start_trials(gauss, walking, weight, position)
        check = np.zeros(len(texts), dtype=np.int64)
        while len(walking):
            count = np.where(check == 0, 1, block)  # a trial's first check comes after one update, then every 5
            drawn, used = self.stream.choices(position, sizes[walking], shift[walking], count)
            position += used
            rows = np.zeros((len(walking), block), dtype=np.int64)
            rows[np.arange(block) < count[:, None]] = grams[np.repeat(offset[walking], count) + drawn]
            factors = self.gram_probs[rows]
            factors += weight[:, None, None]
            factors[count == 1, 1:] = 1.0  # x * 1.0 == x: padding for one-update blocks
            for j in range(block):
                prob *= factors[:, j]
            prob /= python_row_sums(prob)[:, None]
            ended = (prob.max(axis=1) > d.CONV_THRESHOLD) | (check >= d.ITERATION_LIMIT)
            check += block
            if not ended.any():
                continue
            langprob[walking[ended]] += prob[ended] / self.n_trial
            trial[walking[ended]] += 1
            restart = ended & (trial[walking] < self.n_trial)
            prob[restart], check[restart] = 1.0 / n_lang, 0
            self.start_trials(gauss, walking[restart], weight, position, restart)
            going = ~ended | restart
            walking, prob, weight, position, check = (walking[going], prob[going], weight[going], position[going],
                                                      check[going])
        return langprob

    def start_trials(self, gauss: list[_TextGauss], texts: np.ndarray, weight: np.ndarray, position: np.ndarray,
                     rows: np.ndarray | None = None) -> None:
        """Draw the smoothing `alpha / BASE_FREQ` of a new trial (alpha around 0.5) for each text in `texts`,
        at its stream position; `rows` selects the texts' entries in `weight` and `position` (all when None)."""
        d = self.detector
        where = np.arange(len(texts)) if rows is None else np.flatnonzero(rows)
        for row, text in zip(where.tolist(), texts.tolist()):
            value, position[row] = gauss[text].draw(int(position[row]))
            weight[row] = (d.ALPHA_DEFAULT + value * d.ALPHA_WIDTH) / d.BASE_FREQ

    def ranked(self, langprob: np.ndarray) -> Prediction:
        pairs = [(lang, p) for lang, p in zip(self.languages, langprob.tolist()) if p > self.detector.PROB_THRESHOLD]
        pairs.sort(key=lambda pair: pair[1], reverse=True)  # stable: ties keep profile order, as the library
        return pairs


class LibraryLangdetect:
    """langdetect's own `Detector`, one text at a time: the reference `FastLangdetect` must equal."""

    def __init__(self, factory: Any, seed: int = 0) -> None:
        self.factory = factory
        self.factory.set_seed(seed)

    def probabilities(self, texts: Sequence[str]) -> list[Prediction]:
        from langdetect import LangDetectException

        out: list[Prediction] = []
        for text in texts:
            detector = self.factory.create()
            detector.append(text)
            try:
                out.append([(lang.lang, lang.prob) for lang in detector.get_probabilities()])
            except LangDetectException:  # "No features in text": Dolma writes nothing
                out.append([])
        return out


# Texts the fast path is checked on when it loads: several scripts, upper-case runs, a URL, and
# one that needs more than one block of updates to converge.
SELF_CHECK_TEXTS = (
    "The quick brown fox jumps over the lazy dog near the river bank",
    "Der schnelle braune Fuchs springt \u00fcber den faulen Hund",
    "\u0411\u044b\u0441\u0442\u0440\u0430\u044f \u043b\u0438\u0441\u0430 THE USA http://example.com/x",
    "\u4eca\u65e5\u306f\u3044\u3044\u5929\u6c17\u3067\u3059\u306d ok",
    "a b c",
)


@functools.lru_cache(maxsize=1)
def langdetect_model() -> FastLangdetect | LibraryLangdetect:
    """One model per process, shared by the four langdetect taggers (profiles take ~1 s and 40 MB).

    The fast path relies on how CPython's `random` and `sum` work and on langdetect's internals;
    it is checked against the library on a few texts when it loads, and where they differ (another
    Python or langdetect release) the library itself runs: slower, but Dolma's values.
    """
    from langdetect import PROFILES_DIRECTORY, DetectorFactory

    factory = langdetect_factory(PROFILES_DIRECTORY, DetectorFactory)  # read once, for both
    library = LibraryLangdetect(factory, seed=0)  # Dolma's seed
    try:
        fast = FastLangdetect(factory, seed=0)
        if fast.probabilities(SELF_CHECK_TEXTS) == library.probabilities(SELF_CHECK_TEXTS):
            return fast
    except Exception:  # noqa: BLE001 - any failure of the fast path means: use the library
        pass
    import warnings

    warnings.warn("langdetect taggers: the fast path differs from the langdetect library here; using the library "
                  "(same values, slower)", RuntimeWarning, stacklevel=2)
    return library


class Langdetect(LibraryLanguage):
    required_packages = (("langdetect", "langdetect"),)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model = langdetect_model()

    def predict(self, texts: list[str]) -> list[Prediction]:
        return self.model.probabilities(texts)


@register("langdetect_doc_v1", "langdetect: languages with probability > 0.1 for the document (as Dolma, seed 0)")
class LangdetectDoc(Langdetect):
    pass


@register("langdetect_doc_en_v1", "langdetect: `en` and `not_en` probability of the document")
class LangdetectDocEn(Langdetect):
    only_english = True
    negative = True


@register("langdetect_paragraph_v1", "langdetect: languages with probability > 0.1 per paragraph")
class LangdetectParagraph(Langdetect):
    per_paragraph = True


@register("langdetect_en_paragraph_v1", "langdetect: `en` and `not_en` per paragraph")
class LangdetectEnParagraph(Langdetect):
    only_english = True
    negative = True
    per_paragraph = True


# --- CLD2 -------------------------------------------------------------------------------------------

class Cld2(LibraryLanguage):
    """pycld2 on the text; where CLD2 rejects it, on its ASCII transliteration, then without control
    characters and surrogates (Dolma's order). Scores are CLD2's percentages / 100, reliable results only."""

    required_packages = (("pycld2", "pycld2"), ("anyascii", "anyascii"))
    BAD_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]+")  # \p{Cc} and \p{Cs}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        import pycld2
        from anyascii import anyascii

        self.detect, self.cld2_error = pycld2.detect, pycld2.error
        self.variants: tuple[Callable[[str], str], ...] = (str, anyascii, self.without_bad_chars)

    def without_bad_chars(self, text: str) -> str:
        return self.BAD_CHARS.sub("", text)

    def predict(self, texts: list[str]) -> list[Prediction]:
        return [self.predict_text(text) for text in texts]

    def predict_text(self, text: str) -> Prediction:
        for variant in self.variants:
            try:
                reliable, _, details = self.detect(variant(text))
            # Dolma catches only pycld2.error and crashes on a lone surrogate; we go on to the next variant
            except (self.cld2_error, UnicodeEncodeError):
                continue
            if not reliable:
                return []
            return [(name[:2].lower(), percent / 100.0) for name, _, percent, _ in details
                    if name != "UNKNOWN_LANGUAGE"]
        return []


@register("cld2_doc_v2", "CLD2: up to 3 languages of the document (`en`, `fr`, `ge`, `un`...; Dolma's names)")
class Cld2Doc(Cld2):
    pass


@register("cld2_paragraph_v2", "CLD2: up to 3 languages per paragraph")
class Cld2Paragraph(Cld2):
    per_paragraph = True


@register("cld2_en_doc_v2", "CLD2: `en` and `not_en` of the document")
class Cld2EnDoc(Cld2):
    only_english = True
    negative = True


@register("cld2_en_paragraph_v2", "CLD2: `en` and `not_en` per paragraph")
class Cld2EnParagraph(Cld2):
    only_english = True
    negative = True
    per_paragraph = True


@register("cld2_en_paragraph_with_doc_score_v2",
          "CLD2: `en`/`not_en` per paragraph plus length-weighted `doc_en`/`doc_not_en`")
class Cld2EnParagraphDocScore(Cld2EnParagraph):
    doc_score = True
