"""Taggers: registry and built-ins. `dolma list` prints the catalogue.

Each module in BUILTIN_MODULES registers its taggers on import; they are imported lazily, the
first time the catalogue is needed.
"""

from dolma_tools.taggers.base import (Document, Span, TagResult, Tagger, catalogue, get_tagger,
                                      import_tagger_modules, register, tagger_class)

BUILTIN_MODULES: tuple[str, ...] = (
    "dolma_tools.taggers.length",
    "dolma_tools.taggers.sampling",
)

__all__ = ["BUILTIN_MODULES", "Document", "Span", "TagResult", "Tagger", "catalogue", "get_tagger",
           "import_tagger_modules", "register", "tagger_class"]
