"""Taggers: registry and built-ins. `dolma list` prints the catalogue.

Each module in BUILTIN_MODULES registers its taggers on import; they are imported lazily, the
first time the catalogue is needed.
"""

from dolma_tools.taggers.base import (
    Document,
    Span,
    Tagger,
    TaggerSpec,
    TagResult,
    catalogue,
    get_tagger,
    import_tagger_modules,
    parse_tagger_spec,
    register,
    tagger_class,
)

BUILTIN_MODULES: tuple[str, ...] = (
    "dolma_tools.taggers.length",
    "dolma_tools.taggers.sampling",
    "dolma_tools.taggers.quality",
    "dolma_tools.taggers.repetitions",
    "dolma_tools.taggers.tokens",
    "dolma_tools.taggers.language",
    "dolma_tools.taggers.language_other",
    "dolma_tools.taggers.pii",
    "dolma_tools.taggers.content",
    "dolma_tools.taggers.fasttext_models",
    "dolma_tools.taggers.url",
    "dolma_tools.taggers.code",
    "dolma_tools.taggers.licenses",
)

__all__ = ["BUILTIN_MODULES", "Document", "Span", "TagResult", "Tagger", "TaggerSpec", "catalogue", "get_tagger",
           "import_tagger_modules", "parse_tagger_spec", "register", "tagger_class"]
