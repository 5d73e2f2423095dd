"""The tagger API and registry.

A tagger is a class registered under a name. It receives a batch of `Document`s and returns,
for each, a mapping from attribute *type* to spans `(start, end, score)` in Unicode code points.
The runner prefixes types into Dolma keys (`<experiment>__<tagger>__<type>`) and rounds scores.

Instances are built once per worker process and cached (`get_tagger`), so taggers that load a
model load it once, not once per file as Dolma does.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Sequence

from dolma_tools.errors import UserError

Span = tuple[int, int, float]
TagResult = dict[str, list[Span]]


@dataclass(slots=True)
class Document:
    id: str
    text: str
    source: str = ""
    version: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    added: str | None = None
    created: str | None = None

    @classmethod
    def from_json(cls, data: dict) -> "Document":
        metadata = data.get("metadata")
        return cls(id=data["id"], text=data["text"], source=data.get("source") or "",
                   version=data.get("version"), metadata=metadata if isinstance(metadata, dict) else {},
                   added=data.get("added"), created=data.get("created"))


class Tagger:
    """Base class. Override `tag` (one document) or `tag_batch` (vectorised over a batch)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def tag(self, doc: Document) -> TagResult:
        raise NotImplementedError

    def tag_batch(self, docs: Sequence[Document]) -> list[TagResult]:
        return [self.tag(doc) for doc in docs]


_REGISTRY: dict[str, type[Tagger]] = {}
_INSTANCES: dict[str, Tagger] = {}
_builtins_loaded = False


def register(name: str, description: str = "") -> Callable[[type[Tagger]], type[Tagger]]:
    """Class decorator: `@register("char_length_v1", "…")`."""

    def wrap(cls: type[Tagger]) -> type[Tagger]:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
            raise UserError(f"tagger name {name!r} is registered twice ({existing.__module__}.{existing.__qualname__} "
                            f"and {cls.__module__}.{cls.__qualname__})")
        cls.name = name
        if description:
            cls.description = description
        _REGISTRY[name] = cls
        return cls

    return wrap


def load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    from dolma_tools.taggers import BUILTIN_MODULES

    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    _builtins_loaded = True


def import_tagger_modules(modules: Iterable[str]) -> None:
    """Import user modules (dotted names, .py files or package directories) so they register."""
    for spec in modules:
        if spec.endswith(".py") or os.path.sep in spec or os.path.isdir(spec):
            path = os.path.abspath(spec)
            if not os.path.exists(path):
                raise UserError(f"tagger module not found: {spec}")
            if os.path.isdir(path):
                sys.path.insert(0, os.path.dirname(path))
                importlib.import_module(os.path.basename(path))
                continue
            name = "dolma_tools_user_" + os.path.splitext(os.path.basename(path))[0]
            if name in sys.modules:
                continue
            module_spec = importlib.util.spec_from_file_location(name, path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            try:
                importlib.import_module(spec)
            except ImportError as exc:
                raise UserError(f"cannot import tagger module {spec!r}: {exc}") from None


def catalogue() -> dict[str, type[Tagger]]:
    load_builtins()
    return dict(sorted(_REGISTRY.items()))


def tagger_class(name: str) -> type[Tagger]:
    load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown tagger {name!r}; `dolma list` shows the catalogue "
                        f"(custom taggers: --tagger_modules MODULE)") from None


def get_tagger(name: str) -> Tagger:
    """The process-wide instance of a tagger (models load once per worker)."""
    instance = _INSTANCES.get(name)
    if instance is None:
        instance = _INSTANCES[name] = tagger_class(name)()
    return instance
