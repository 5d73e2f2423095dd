"""Content taggers: offline toxicity/profanity, and a generic fastText classifier.

- `profanity_doc_v1` / `profanity_sentence_v1`: the linear classifier that the installed
  `alt-profanity-check` package ships (TF-IDF + calibrated linear SVM), so nothing is downloaded.
  Type `profanity` = probability that the text is profane/toxic.
- `fasttext_classifier:model=PATH[,mode=document|paragraph|sentence][,k=N]`: applies any
  supervised fastText model (e.g. one trained with `dolma train-fasttext`) and emits every label's
  probability, keys keeping fastText's `__label__` prefix as Dolma's fastText taggers do.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dolma_tools.errors import UserError
from dolma_tools.taggers.base import Document, Tagger, TagResult, register
from dolma_tools.taggers.language import FastTextModelTagger, load_fasttext
from dolma_tools.text import paragraphs, sentences

_PROFANITY: tuple[Any, Any] | None = None


def profanity_model():
    """(vectorizer, model) from alt-profanity-check, loaded once per process."""
    global _PROFANITY
    if _PROFANITY is None:
        try:
            from importlib import resources

            import joblib

            base = resources.files("profanity_check") / "data"
            _PROFANITY = (joblib.load(base / "vectorizer.joblib"), joblib.load(base / "model.joblib"))
        except ModuleNotFoundError:
            raise UserError("the profanity taggers need `pip install alt-profanity-check`") from None
    return _PROFANITY


def profanity_probabilities(texts: list[str]) -> np.ndarray:
    if not texts:
        return np.zeros(0)
    vectorizer, model = profanity_model()
    return model.predict_proba(vectorizer.transform(texts))[:, 1]


@register("profanity_doc_v1", "toxicity/profanity probability of the document (`profanity`), offline "
                              "(alt-profanity-check's classifier)")
class ProfanityDoc(Tagger):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        profanity_model()

    def tag_batch(self, docs: Sequence[Document]) -> list[TagResult]:
        probs = profanity_probabilities([d.text for d in docs])
        return [{"profanity": [(0, len(d.text), float(p))]} for d, p in zip(docs, probs)]


@register("profanity_sentence_v1", "toxicity/profanity probability per sentence (`profanity`) and the "
                                   "document's maximum (`doc_max_profanity`)")
class ProfanitySentence(Tagger):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        profanity_model()

    def tag_batch(self, docs: Sequence[Document]) -> list[TagResult]:
        units = [(i, s) for i, d in enumerate(docs) for s in sentences(d.text)]
        probs = profanity_probabilities([s.text for _, s in units])
        out: list[TagResult] = [{} for _ in docs]
        for (i, s), p in zip(units, probs):
            out[i].setdefault("profanity", []).append((s.start, s.end, float(p)))
        for d, o in zip(docs, out):
            o["doc_max_profanity"] = [(0, len(d.text), max((p for _, _, p in o.get("profanity", [])), default=0.0))]
        return out


@register("fasttext_classifier", "any supervised fastText model (model=PATH, mode=document|paragraph|sentence, "
                                 "k=labels): `__label__<x>` probabilities")
class FastTextClassifier(FastTextModelTagger):
    options = {"model": "fastText model file (.bin/.ftz), e.g. from `dolma train-fasttext` (required)",
               "mode": "document (default), paragraph or sentence",
               "k": "number of labels to keep per unit (default -1: all)"}
    required_options = ("model",)
    MODES = ("document", "paragraph", "sentence")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        path = self.option("model")
        self.mode = self.option("mode", "document")
        if self.mode not in self.MODES:
            raise UserError(f"fasttext_classifier: mode must be one of {', '.join(self.MODES)}, got {self.mode!r}")
        self.k = self.option("k", -1, int)
        self.model = load_fasttext(str(path))

    def tag_batch(self, docs: Sequence[Document]) -> list[TagResult]:
        units: list[tuple[int, int, int, str]] = []
        for i, d in enumerate(docs):
            if self.mode == "document":
                units.append((i, 0, len(d.text), d.text))
            else:
                split = paragraphs if self.mode == "paragraph" else sentences
                units.extend((i, s.start, s.end, s.text) for s in split(d.text))
        out: list[TagResult] = [{} for _ in docs]
        if units:
            labels, probs = self.model.predict([u[3].replace("\n", " ").strip() for u in units], k=self.k)
            for (i, s, e, _), labs, ps in zip(units, labels, probs):
                for lab, p in zip(labs, ps):
                    out[i].setdefault(lab, []).append((s, e, float(p)))
        return out


class _DolmaFastTextModel(FastTextClassifier):
    """Dolma's named fastText classifiers. Dolma downloads their models; we never download, so
    `model=PATH` (the same .bin file) is required and the error says where Dolma got it."""

    MODE = "document"

    def __init__(self, **options: Any) -> None:
        Tagger.__init__(self, **options)
        self.mode, self.k = self.MODE, -1
        self.model = load_fasttext(str(self.option("model")))


_JIGSAW = "from dolma-artifacts.org"
for _name, _mode, _file in [
    ("jigsaw_hatespeech_document_v2", "document", "jigsaw_fasttext_bigrams_hatespeech_final.bin"),
    ("jigsaw_hatespeech_sentence_v2", "sentence", "jigsaw_fasttext_bigrams_hatespeech_final.bin"),
    ("jigsaw_nsfw_document_v1", "document", "jigsaw_fasttext_bigrams_nsfw_final.bin"),
    ("jigsaw_nsfw_sencence_v2", "sentence", "jigsaw_fasttext_bigrams_nsfw_final.bin"),  # Dolma's spelling
    ("jigsaw_nsfw_sentence_v2", "sentence", "jigsaw_fasttext_bigrams_nsfw_final.bin"),
]:
    register(_name, f"Dolma's Jigsaw fastText classifier per {_mode} (needs model=PATH to {_file}): "
                    f"`__label__*` probabilities")(
        type(f"Jigsaw_{_name}", (_DolmaFastTextModel,), {
            "MODE": _mode, "__module__": __name__,
            "options": {"model": f"the file Dolma downloads: {_file} {_JIGSAW}"}}))
