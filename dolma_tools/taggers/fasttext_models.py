"""Dolma 1.2.1's named fastText classifiers whose models Dolma downloads when the tagger starts.

We never download, so each needs `model=PATH` (local or `s3://`): a copy of the file Dolma fetches
(`DOWNLOADED_BY_DOLMA`). Values, types and key order are Dolma's for the same model file.

- `dclm-oh-eli5`: DCLM's OpenHermes/ELI5 vs RefinedWeb classifier on the whole document, lines
  joined by spaces; one type, `score` = P(hq) (1 - P(cc) when `cc` is the top label).
- `dolma17-quality`: Dolma 1.7's quality classifier on the whitespace-normalised document; every
  label's probability, the types in decreasing probability.
- `code_composition`: classifies each non-blank line (stripped) as code, prose, ...; per label its
  line count, share (`_pct`) and mean prediction entropy (`_entropy`), and `boundaries`, the
  number of code/prose switches between consecutive lines.

All spans cover the whole document; a batch makes one `predict` call per tagger.
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

from dolma_tools.taggers.base import Document, TagResult, register
from dolma_tools.taggers.language import LABEL_PREFIX, FastTextModelTagger, load_fasttext

DOWNLOADED_BY_DOLMA = {
    "dclm-oh-eli5": "https://huggingface.co/mlfoundations/fasttext-oh-eli5/resolve/main/"
                    "openhermes_reddit_eli5_vs_rw_v2_bigram_200k_train.bin",
    "dolma17-quality": "https://dolma-artifacts.org/fasttext_models/dolma-1_7/"
                       "cc_wiki_wikiref_sw_pes2o_adult_fakenews_math_books_openhermes.bin",
    "code_composition": "hf://techarb/code-prose-composition/code-comment-prose-model.bin",
}

# Unicode White_Space, what Dolma 1.7's `WhitespaceSplit` pre-tokenizer (Rust's char::is_whitespace)
# splits on; Python's str.split() would also split on \x1c-\x1f
_WHITE_SPACE = re.compile("[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")

# Dolma's code_composition calls `label.lstrip("__label__")`: strips any of these characters, not
# the prefix, so `__label__blank` becomes `nk`; kept so that types match Dolma's
_LSTRIPPED = "__label__"

# lines this long or shorter are not classified, but counted as `other` (Dolma's rule)
_SHORT_LINE = 3


def group_spans(predictions: list[tuple[str, float]], end: int) -> TagResult:
    """Whole-document spans by type in prediction order, several under one type if it repeats, as
    Dolma's `group_output` does."""
    out: TagResult = {}
    for label, score in predictions:
        out.setdefault(label, []).append((0, end, score))
    return out


class _DownloadedFastTextModel(FastTextModelTagger):
    """A Dolma fastText tagger whose model comes from `model=PATH` instead of a download."""

    required_options = ("model",)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.model = load_fasttext(str(self.option("model")))

    def predict(self, texts: list[str], k: int) -> list[list[tuple[str, float]]]:
        """`(label, probability)` per text in fastText's order. Batched predictions are float32;
        Dolma's single-text ones are the same numbers as float64, which its arithmetic uses."""
        if not texts:
            return []
        labels, probs = self.model.predict(texts, k=k)
        return [list(zip(labs, ps.astype("float64").tolist())) for labs, ps in zip(labels, probs)]


def _model_option(name: str) -> dict[str, str]:
    return {"model": f"a copy of the fastText model Dolma downloads, {DOWNLOADED_BY_DOLMA[name]}"}


@register("dclm-oh-eli5", "DCLM's fastText quality classifier (needs model=PATH): `score` = P(hq)")
class DclmOhEli5(_DownloadedFastTextModel):
    options = _model_option("dclm-oh-eli5")

    @staticmethod
    def prepare(text: str) -> str:
        # Dolma's: one line, whatever Python takes as a line break (\r, \x85, \u2028, ...)
        return " ".join(text.strip().splitlines())

    @staticmethod
    def score(label: str, probability: float) -> tuple[str, float]:
        # the model is binary (hq vs cc): Dolma turns a top `cc` into P(hq) and names both `score`
        if label == "__label__cc":
            probability = 1 - probability
        return label.replace(LABEL_PREFIX, "").replace("cc", "score").replace("hq", "score"), probability

    def tag_batch(self, docs: Sequence[Document]) -> list[TagResult]:
        top = self.predict([self.prepare(d.text) for d in docs], k=1)
        return [group_spans([self.score(*best[0])], len(d.text)) for d, best in zip(docs, top)]


@register("dolma17-quality", "Dolma 1.7's fastText quality classifier (needs model=PATH): every label's "
                             "probability (`wiki`, `cc`, ...)")
class Dolma17Quality(_DownloadedFastTextModel):
    options = _model_option("dolma17-quality")

    @staticmethod
    def prepare(text: str) -> str:
        # Dolma fails on a text without words (it unpacks an empty token list); we classify the
        # empty string, which is what joining no words gives
        return " ".join(word for word in _WHITE_SPACE.split(text) if word)

    def tag_batch(self, docs: Sequence[Document]) -> list[TagResult]:
        out = []
        for d, preds in zip(docs, self.predict([self.prepare(d.text) for d in docs], k=-1)):
            # Dolma re-sorts by probability (stable): key order follows it
            ranked = sorted(((label.replace(LABEL_PREFIX, ""), p) for label, p in preds),
                            key=lambda pair: pair[1], reverse=True)
            out.append(group_spans(ranked, len(d.text)))
        return out


def entropy(distribution: list[float]) -> float:
    """Shannon entropy in bits, summed in the distribution's order (as Dolma, so floats match)."""
    total = 0.0
    for p in distribution:
        if p > 0:
            total -= p * math.log2(p)
    return total


def mean_entropy(distributions: list[list[float]]) -> float:
    total = 0.0
    for distribution in distributions:  # a loop, not sum(): Python 3.12's sum() compensates rounding
        total += entropy(distribution)
    return total / len(distributions)


def composition(labels: list[str], distributions: list[list[float]]) -> list[tuple[str, float]]:
    """Dolma's code_composition predictions for one document's classified lines."""
    counts: dict[str, int] = {}
    per_label: dict[str, list[list[float]]] = {}
    boundaries, previous = 0, None
    for label, distribution in zip(labels, distributions):
        counts[label] = counts.get(label, 0) + 1
        per_label.setdefault(label, []).append(distribution)
        # a switch between code and prose; any other line in between (even `other`) resets it
        if previous in ("code", "prose") and label in ("code", "prose") and label != previous:
            boundaries += 1
        previous = label
    out: list[tuple[str, float]] = [("boundaries", float(boundaries))]
    lines = sum(counts.values())
    for label, count in counts.items():
        out += [(f"{label}_pct", round(count / lines, 2)), (label, float(count)),
                (f"{label}_entropy", mean_entropy(per_label[label]))]
    return out


@register("code_composition", "code/prose composition of the lines (needs model=PATH): per label its line "
                              "count, `_pct`, `_entropy`, and `boundaries`")
class CodeComposition(_DownloadedFastTextModel):
    options = _model_option("code_composition")

    @staticmethod
    def lines(text: str) -> list[str]:
        return [stripped for line in text.splitlines() if (stripped := line.strip())]

    def tag_batch(self, docs: Sequence[Document]) -> list[TagResult]:
        per_doc = [self.lines(d.text) for d in docs]
        # one predict call for the batch's classifiable lines; short lines are `other`, no distribution
        long_lines = [line for lines in per_doc for line in lines if len(line) > _SHORT_LINE]
        predictions = iter(self.predict(long_lines, k=-1))
        out = []
        for d, lines in zip(docs, per_doc):
            labels: list[str] = []
            distributions: list[list[float]] = []
            for line in lines:
                preds = next(predictions) if len(line) > _SHORT_LINE else []
                labels.append(preds[0][0].lstrip(_LSTRIPPED) if preds else "other")
                distributions.append([p for _, p in preds])
            out.append(group_spans(composition(labels, distributions), len(d.text)))
        return out
