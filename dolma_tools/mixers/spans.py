"""Span replacement, as Dolma's mixer: mask PII, delete duplicate paragraphs, ...

Each replacer selects a list of `[start, end, score]` spans (JSONPath, jq or Python) and keeps
those with `min_score <= score < max_score` (a missing bound is unbounded; the upper bound is
exclusive). Spans from all replacers are pooled, sorted by start (stably, so earlier replacers
win ties) and applied in one pass over code points; a span starting before the end of the last
applied one is skipped, so the first span wins. `{}` in the replacement is the original span
text; a replacement starting with `$` is a jq program on the document that returns the text
(`\\$` for a literal `$`). An empty replacement deletes the span and keeps its neighbours.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from dolma_tools.errors import ConfigError
from dolma_tools.mixers.filters import PatternError, compile_jq, compile_python, jq_outputs
from dolma_tools.mixers.jsonpath import JsonPath, is_number


class SpanError(Exception):
    """A selector returned something that is not a list of spans."""


def _is_span(value: Any) -> bool:
    return (isinstance(value, list) and len(value) >= 2 and is_number(value[0]) and is_number(value[1]))


def _flatten_spans(values: list) -> list:
    """Selector results -> spans. Accepts a list of spans, several such lists, or single spans."""
    out: list = []
    for value in values:
        if value is None:
            continue
        if _is_span(value):
            out.append(value)
        elif isinstance(value, list):
            for span in value:
                if not _is_span(span):
                    raise SpanError(f"expected [start, end, score] spans, got {span!r}")
                out.append(span)
        else:
            raise SpanError(f"expected a list of [start, end, score] spans, got {value!r}")
    return out


class SpanReplacer:
    def __init__(self, span: str, min_score: float | None = None, max_score: float | None = None,
                 replacement: str = "", syntax: str = "jsonpath") -> None:
        if min_score is None and max_score is None:
            raise ConfigError(f"span replacement {span!r} needs min_score or max_score")
        self.pattern = span
        self.min_score = -math.inf if min_score is None else float(min_score)
        self.max_score = math.inf if max_score is None else float(max_score)
        syntax = (syntax or "jsonpath").lower()
        if syntax == "jsonpath":
            run = JsonPath(span)._run
            self.select: Callable[[dict], list] = lambda doc: run(doc, doc)
        elif syntax == "jq":
            compiled = compile_jq(span)
            self.select = lambda doc: jq_outputs(compiled, doc)
        elif syntax == "python":
            evaluate = compile_python(span)

            def select_python(doc: dict) -> list:
                try:
                    return [evaluate(doc)]
                except (KeyError, IndexError, TypeError, NameError):
                    return []
            self.select = select_python
        else:
            raise ConfigError(f"unknown span syntax {syntax!r} (use jsonpath, jq or python)")
        self.replacement = replacement or ""
        self.program = None
        if self.replacement.startswith("$"):
            self.program = compile_jq(self.replacement[1:])
        elif self.replacement.startswith("\\$"):
            self.replacement = self.replacement[1:]
        self.has_placeholder = "{}" in self.replacement

    def spans(self, doc: dict) -> list[tuple[int, int, "SpanReplacer"]]:
        """(start, end, self) of the selected spans whose score lies in the window."""
        try:
            found = _flatten_spans(self.select(doc))
        except PatternError as exc:
            raise SpanError(str(exc)) from None
        lo, hi = self.min_score, self.max_score
        out = []
        for span in found:
            score = span[2] if len(span) > 2 else 1.0
            if is_number(score) and lo <= score < hi:
                out.append((int(span[0]), int(span[1]), self))
        return out

    def text_for(self, original: str, doc: dict) -> str:
        if self.program is not None:
            outputs = jq_outputs(self.program, doc)
            if len(outputs) != 1 or not isinstance(outputs[0], str):
                raise SpanError(f"replacement program {self.replacement!r} must return one string")
            template = outputs[0]
        else:
            template = self.replacement
        if self.has_placeholder or (self.program is not None and "{}" in template):
            return template.replace("{}", original)
        return template


def replace_spans(text: str, doc: dict, replacers: list[SpanReplacer]) -> tuple[str, int]:
    """(new text, number of spans replaced) for a document."""
    pooled: list = []
    for replacer in replacers:
        pooled.extend(replacer.spans(doc))
    if not pooled:
        return text, 0
    pooled.sort(key=lambda item: item[0])
    pieces: list[str] = []
    position = 0
    applied = 0
    length = len(text)
    for start, end, replacer in pooled:
        if start < position:
            continue
        start = max(0, min(start, length))
        end = max(start, min(end, length))
        pieces.append(text[position:start])
        pieces.append(replacer.text_for(text[start:end], doc))
        position = end
        applied += 1
    pieces.append(text[position:])
    return "".join(pieces), applied
