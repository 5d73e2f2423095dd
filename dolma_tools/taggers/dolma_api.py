"""Dolma's public tagger API, so tagger modules written for Dolma load unchanged.

A module written against Dolma 1.2 imports `add_tagger`, `BaseTagger`, `DocResult`, `Document`,
`Span` ... from `dolma`, `dolma.core`, `dolma.core.data_types`, `dolma.core.taggers`,
`dolma.core.registry`, `dolma.core.utils` or `dolma.core.ft_tagger`, subclasses `BaseTagger` and
implements `predict(doc) -> DocResult`. When the real `dolma` package is not importable,
`install()` puts modules with those names in `sys.modules`, built from the classes below; it runs
before every import of tagger modules (`base.import_tagger_modules`), in the driver and in each
worker. Registering a class (`add_tagger`, `TaggerRegistry.add`) also registers an adapter in our
registry: a `Tagger` that hands each document to the class's `tag` (Dolma's flow: `predict`, then
spans grouped by type, scores rounded to 5 places, `defaults` types pre-created as empty lists).

When the real `dolma` is installed, user modules import it and register with Dolma's registry;
`adopt_registered()` then wraps the classes that are not Dolma's own built-ins the same way.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import sys
import types
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

from dolma_tools.errors import UserError
from dolma_tools.taggers.base import _REGISTRY, Tagger, TagResult, register
from dolma_tools.taggers.base import Document as _OurDocument

TAGGER_SCORE_PRECISION = 5
TaggerOutputValueType = Tuple[int, int, float]
TaggerOutputType = List[TaggerOutputValueType]
TaggerOutputDictType = Dict[str, TaggerOutputType]


# ----------------------------------------------------------------------------------------------
# dolma.core.data_types


class InputSpec:
    """A decoded input line, as Dolma's taggers receive it (`tag(row)`)."""

    def __init__(self, id: str, text: str, source: str = "", created: str = "", added: str = "",
                 version: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None) -> None:
        self.id, self.text, self.source, self.version = id, text, source, version
        self.created, self.added, self.metadata = created, added, metadata

    @classmethod
    def from_document(cls, doc: _OurDocument) -> "InputSpec":
        return cls(id=doc.id, text=doc.text, source=doc.source or "", created=doc.created or "",
                   added=doc.added or "", version=doc.version, metadata=doc.metadata)


InputSpecWithMetadata = InputSpec


class Document:
    __slots__ = ("source", "version", "id", "text")

    def __init__(self, source: str, id: str, text: str, version: Optional[str] = None) -> None:
        self.source, self.id, self.text, self.version = source, id, text, version

    @classmethod
    def from_spec(cls, spec: Any) -> "Document":
        return cls(source=spec.source, id=spec.id, text=spec.text, version=spec.version)

    def to_spec(self) -> InputSpec:
        return InputSpec(id=self.id, text=self.text, source=self.source, version=self.version)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Document":
        return cls(source=d["source"], id=d["id"], text=d["text"], version=d["version"])

    def to_json(self) -> Dict[str, Any]:
        return {"source": self.source, "version": self.version, "id": self.id, "text": self.text}

    def __str__(self) -> str:
        fields = ",".join(f"{key}:{value!r}" for key, value in self.to_json().items())
        return f"{type(self).__name__}({fields})"


class DocumentWithMetadata(Document):
    __slots__ = ("metadata",)

    def __init__(self, *args: Any, metadata: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metadata = metadata or {}

    @classmethod
    def from_spec(cls, spec: Any) -> "DocumentWithMetadata":
        return cls(source=spec.source, id=spec.id, text=spec.text, version=spec.version,
                   metadata=getattr(spec, "metadata", None))

    def to_spec(self) -> InputSpec:
        return InputSpec(id=self.id, text=self.text, source=self.source, version=self.version, metadata=self.metadata)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "DocumentWithMetadata":
        return cls(source=d["source"], id=d["id"], text=d["text"], version=d["version"], metadata=d["metadata"])

    def to_json(self) -> Dict[str, Any]:
        return {**super().to_json(), "metadata": self.metadata}


class Span:
    __slots__ = ("start", "end", "type", "score", "experiment", "tagger")

    def __init__(self, start: int, end: int, type: str, score: float = 1.0,
                 experiment: Optional[str] = None, tagger: Optional[str] = None) -> None:
        self.start, self.end, self.type, self.score = start, end, type, float(score)
        self.experiment, self.tagger = experiment, tagger

    def mention(self, text: str, window: int = 0) -> str:
        return text[max(0, self.start - window): min(len(text), self.end + window)]

    def select(self, doc: Document) -> str:
        return doc.text[self.start: self.end]

    def __len__(self) -> int:
        return self.end - self.start

    @classmethod
    def from_spec(cls, attribute_name: str, attribute_value: TaggerOutputValueType) -> "Span":
        """A span from an attribute key (`exp__tagger__type`) and one `[start, end, score]`."""
        parts = attribute_name.split("__", 2) if "__" in attribute_name else [attribute_name] * 3
        experiment, tagger, span_type = (parts + parts[-1:] * 3)[:3]
        start, end, score = attribute_value
        return cls(int(start), int(end), span_type, float(score), experiment=experiment, tagger=tagger)

    def to_spec(self) -> Tuple[str, TaggerOutputValueType]:
        if self.experiment is None or self.tagger is None:
            raise ValueError("a span needs its experiment and tagger names to become an attribute")
        return f"{self.experiment}__{self.tagger}__{self.type}", (self.start, self.end, self.score)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Span":
        return cls(start=d["start"], end=d["end"], type=d["type"], score=d["score"])

    def to_json(self, text: Optional[str] = None, window: int = 0) -> Dict[str, Any]:
        out: Dict[str, Any] = {"start": self.start, "end": self.end, "type": self.type, "score": self.score}
        if text is not None:
            out["mention"] = self.mention(text, window)
        return out

    def __eq__(self, other: Any) -> bool:
        return (isinstance(other, type(self)) and (self.start, self.end, self.type, self.score)
                == (other.start, other.end, other.type, other.score))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(start={self.start},end={self.end},type={self.type!r},score={self.score:.5f})"

    __str__ = __repr__


class DocResult:
    __slots__ = ("doc", "spans")

    def __init__(self, doc: Document, spans: List[Span]) -> None:
        self.doc, self.spans = doc, spans

    def to_json(self, with_doc: bool = False, window: int = 0) -> Dict[str, Any]:
        out: Dict[str, Any] = {"spans": [span.to_json(text=self.doc.text, window=window) for span in self.spans]}
        if with_doc:
            out["doc"] = self.doc.to_json()
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(doc={self.doc},spans=[{','.join(str(s) for s in self.spans)}])"


class TextSlice:
    """`doc[start:end]` without copying until `.text` is read."""

    __slots__ = ("doc", "start", "end")

    def __init__(self, doc: str, start: int, end: int) -> None:
        self.doc, self.start, self.end = doc, start, end

    @property
    def text(self) -> str:
        return self.doc[self.start: self.end]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(text={self.text!r},start={self.start},end={self.end})"


# ----------------------------------------------------------------------------------------------
# dolma.core.taggers


class BaseTagger:
    """Dolma's tagger base class: implement `predict(doc: Document) -> DocResult`."""

    FIELDS: List[str] = ["text"]

    @classmethod
    def train(cls, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("This tagger does not support training")

    @classmethod
    def test(cls, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("This tagger does not support testing")

    @property
    def defaults(self) -> List[str]:
        """Span types written (as empty lists) even when `predict` returns none of them."""
        return []

    def predict(self, doc: Document) -> DocResult:
        raise NotImplementedError

    def group_output(self, doc_result: DocResult) -> TaggerOutputDictType:
        out: TaggerOutputDictType = {name: [] for name in self.defaults}
        for span in doc_result.spans:
            out.setdefault(span.type, []).append(
                (span.start, span.end, round(float(span.score), TAGGER_SCORE_PRECISION)))
        return out

    def tag(self, row: Any) -> TaggerOutputDictType:
        return self.group_output(self.predict(Document.from_spec(row)))


class BaseTaggerWithMetadata(BaseTagger):
    """A tagger that also reads `doc.metadata` (`predict(doc: DocumentWithMetadata)`)."""

    def tag(self, row: Any) -> TaggerOutputDictType:
        return self.group_output(self.predict(DocumentWithMetadata.from_spec(row)))


# ----------------------------------------------------------------------------------------------
# dolma.core.registry


class BaseRegistry:
    """Dolma's registry interface; every class added also becomes a tagger of ours."""

    _storage: Dict[str, type] = {}

    @classmethod
    def add(cls, name: str) -> Callable[[type], type]:
        def add_class(tagger_cls: type) -> type:
            existing = cls._storage.get(name)
            if existing is not None and existing is not tagger_cls and tagger_cls.__module__ == "__main__":
                return tagger_cls  # Dolma's rule: a re-run script keeps its first class
            adopt(name, tagger_cls)
            cls._storage[name] = tagger_cls
            return tagger_cls

        return add_class

    @classmethod
    def items(cls) -> Iterator[Tuple[str, type]]:
        yield from sorted(cls._storage.items())

    @classmethod
    def has(cls, name: str) -> bool:
        return name in cls._storage

    @classmethod
    def remove(cls, name: str) -> bool:
        return cls._storage.pop(name, None) is not None

    @classmethod
    def get(cls, name: str) -> type:
        if name not in cls._storage:
            raise ValueError(f"Unknown tagger {name}; available taggers: {', '.join(cls._storage)}")
        return cls._storage[name]


class TaggerRegistry(BaseRegistry):
    pass


add_tagger = TaggerRegistry.add


# ----------------------------------------------------------------------------------------------
# dolma.core.utils and dolma.core.ft_tagger


def make_variable_name(name: str, remove_multiple_underscores: bool = False) -> str:
    name = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    if remove_multiple_underscores:
        name = re.sub(r"__+", "_", name)
    if name[:1].isdigit():
        raise ValueError(f"Invalid variable name {name}")
    return name


def split_paragraphs(text: str, remove_empty: bool = True) -> List[TextSlice]:
    """Dolma's paragraphs: each line with its `\\n`; whitespace-only ones dropped unless asked."""
    from dolma_tools.text import paragraphs

    return [TextSlice(text, p.start, p.end) for p in paragraphs(text, keep_empty=not remove_empty)]


def split_sentences(text: str, remove_empty: bool = True) -> List[TextSlice]:
    """blingfire's sentence offsets when it is installed (as Dolma); otherwise `dolma_tools.text.sentences`,
    which can place boundaries differently (Dolma falls back to an NLTK download)."""
    if not text:
        return []
    if importlib.util.find_spec("blingfire") is not None:
        import blingfire

        _, offsets = blingfire.text_to_sentences_and_offsets(text)
        return [TextSlice(text, start, end) for start, end in offsets]
    from dolma_tools.text import sentences

    return [TextSlice(text, s.start, s.end) for s in sentences(text)]


def split_words(text: str, remove_empty: bool = True) -> List[TextSlice]:
    """Unicode (UAX #29) words, from the `uniseg` package as in Dolma."""
    try:
        from uniseg.wordbreak import words
    except ImportError:
        raise UserError("split_words (dolma.core.utils) needs the uniseg package: `pip install uniseg`") from None
    out, offset = [], 0
    for word in words(text):
        if word.strip() or not remove_empty:
            out.append(TextSlice(text, offset, offset + len(word)))
        offset += len(word)
    return out


class Prediction(NamedTuple):
    label: str
    score: float


class BaseFastTextTagger(BaseTagger):
    """Dolma's fastText base: `__init__(model_path, mode)`, implement `predict_slice`. The model
    is loaded once per process and path (local path, or s3:// copied once)."""

    SENTENCE_LEVEL_TAGGER = "sentence"
    PARAGRAPH_LEVEL_TAGGER = "paragraph"
    DOCUMENT_LEVEL_TAGGER = "document"

    def __init__(self, model_path: str, model_mode: str) -> None:
        from dolma_tools.taggers.language import load_fasttext

        self.classifier = load_fasttext(str(model_path))
        self.mode = model_mode

    def predict(self, doc: Document) -> DocResult:
        if self.mode == self.SENTENCE_LEVEL_TAGGER:
            units = split_sentences(doc.text)
        elif self.mode == self.PARAGRAPH_LEVEL_TAGGER:
            units = split_paragraphs(doc.text)
        elif self.mode == self.DOCUMENT_LEVEL_TAGGER:
            units = [TextSlice(doc.text, 0, len(doc.text))]
        else:
            raise ValueError(f"Unknown mode {self.mode}")
        spans = [Span(unit.start, unit.end, type=p.label, score=p.score)
                 for unit in units for p in self.predict_slice(unit)]
        return DocResult(doc=doc, spans=spans)

    def predict_slice(self, text_slice: TextSlice) -> Iterable[Prediction]:
        raise NotImplementedError("Please implement the predict slice method")


class DolmaError(Exception):
    pass


class DolmaFatalError(DolmaError):
    pass


class DolmaShardError(DolmaError):
    pass


class DolmaRetryableFailure(DolmaError):
    pass


class DolmaConfigError(DolmaError):
    pass


# ----------------------------------------------------------------------------------------------
# Adapters into our registry, and the `dolma` modules


def adopt(name: str, dolma_cls: type) -> type[Tagger]:
    """Register `dolma_cls` (a Dolma-style tagger class) under `name` in our registry."""

    class DolmaApiTagger(Tagger):
        description = f"{dolma_cls.__module__}.{dolma_cls.__qualname__} (Dolma API)"

        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.dolma_tagger = dolma_cls()  # Dolma builds taggers without arguments

        def tag(self, doc: _OurDocument) -> TagResult:
            return self.dolma_tagger.tag(InputSpec.from_document(doc))

    # our registry tells two classes apart by qualified name: re-registering the same class is fine
    DolmaApiTagger.__qualname__ = dolma_cls.__qualname__
    DolmaApiTagger.__module__ = dolma_cls.__module__
    return register(name)(DolmaApiTagger)


def adopt_registered() -> None:
    """With the real `dolma` installed: wrap the classes user modules added to its registry."""
    registry = sys.modules.get("dolma.core.registry")
    if registry is None or getattr(registry, "__dolma_tools_shim__", False):
        return
    for name, cls in registry.TaggerRegistry.items():
        if name not in _REGISTRY and not cls.__module__.startswith("dolma."):
            adopt(name, cls)


_MODULES: dict[str, dict[str, Any]] = {
    "dolma": {"add_tagger": add_tagger, "BaseTagger": BaseTagger, "TaggerRegistry": TaggerRegistry},
    "dolma.core": {"BaseTagger": BaseTagger, "DocResult": DocResult, "Document": Document, "Span": Span,
                   "TaggerRegistry": TaggerRegistry},
    "dolma.core.data_types": {
        name: globals()[name] for name in (
            "InputSpec", "InputSpecWithMetadata", "Document", "DocumentWithMetadata", "Span", "DocResult",
            "TextSlice", "TaggerOutputValueType", "TaggerOutputType", "TaggerOutputDictType")},
    "dolma.core.taggers": {"BaseTagger": BaseTagger, "BaseTaggerWithMetadata": BaseTaggerWithMetadata,
                           "TAGGER_SCORE_PRECISION": TAGGER_SCORE_PRECISION, "DocResult": DocResult,
                           "Document": Document, "DocumentWithMetadata": DocumentWithMetadata},
    "dolma.core.registry": {"BaseRegistry": BaseRegistry, "TaggerRegistry": TaggerRegistry},
    "dolma.core.utils": {"make_variable_name": make_variable_name, "split_paragraphs": split_paragraphs,
                         "split_sentences": split_sentences, "split_words": split_words},
    "dolma.core.ft_tagger": {"BaseFastTextTagger": BaseFastTextTagger, "Prediction": Prediction,
                             "DocResult": DocResult, "Document": Document, "Span": Span, "TextSlice": TextSlice},
    "dolma.core.errors": {name: globals()[name] for name in (
        "DolmaError", "DolmaFatalError", "DolmaShardError", "DolmaRetryableFailure", "DolmaConfigError")},
}
PROVIDED = tuple(_MODULES)


def install() -> None:
    """Make `import dolma...` give this API, unless the real package is importable."""
    if "dolma" in sys.modules or importlib.util.find_spec("dolma") is not None:
        return
    for name, attributes in _MODULES.items():
        module = types.ModuleType(name, f"dolma-tools' stand-in for Dolma's {name} (see {__name__})")
        module.__dict__.update(attributes)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        module.__path__ = []  # a package: `import dolma.other` fails with "No module named 'dolma.other'"
        module.__dolma_tools_shim__ = True
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
