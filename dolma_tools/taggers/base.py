"""The tagger API and registry.

A tagger is a class registered under a name. It receives a batch of `Document`s and returns,
for each, a mapping from attribute *type* to spans `(start, end, score)` in Unicode code points.
The runner prefixes types into Dolma keys (`<experiment>__<tagger>__<type>`) and rounds scores.

Instances are built once per worker process and cached (`get_tagger`), so taggers that load a
model load it once, not once per file as Dolma does.

Taggers may take options (e.g. another fastText model file). A tagger *spec* names a tagger and
its options: `ft_lang_id_doc_v1:model=/models/lid.bin` or `fasttext_classifier:model=q.bin,mode=paragraph`.
A class lists the options it accepts in `options` (name -> help); `as=NAME` is accepted by every
tagger and renames it in the attribute keys.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

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
    """Base class. Override `tag` (one document) or `tag_batch` (vectorised over a batch).

    Options from a spec arrive as keyword arguments (strings from the command line, any type
    from a config file); `self.option(name, default, type)` reads one.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[dict[str, str]] = {}
    required_options: ClassVar[tuple[str, ...]] = ()
    # optional packages the tagger imports, as (module, distribution), and the extra that installs them
    required_packages: ClassVar[tuple[tuple[str, str], ...]] = ()
    packages_extra: ClassVar[str] = ""

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Raise UserError on an unknown or missing option, or a missing optional package (called
        before any work starts)."""
        for module, distribution in cls.required_packages:
            if importlib.util.find_spec(module) is None:
                raise UserError(f"tagger {cls.name!r} needs the package {distribution}: "
                                f"pip install 'dolma-tools[{cls.packages_extra}]'")
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            accepted = ", ".join(sorted(cls.options)) or "none"
            raise UserError(f"tagger {cls.name!r} has no option {unknown[0]!r} (accepted: {accepted})")
        for key in cls.required_options:
            if options.get(key) in (None, ""):
                raise UserError(f"tagger {cls.name!r} needs the option {key}: "
                                f"--taggers {cls.name}:{key}=VALUE ({cls.options.get(key, '')})")

    def __init__(self, **options: Any) -> None:
        self.check_options(options)
        self.given_options = dict(options)

    def option(self, key: str, default: Any = None, tp: Callable[[Any], Any] = str) -> Any:
        value = self.given_options.get(key, default)
        if value is None or value is default:
            return value
        try:
            return tp(value)
        except (TypeError, ValueError):
            raise UserError(f"tagger {self.name!r}: option {key}={value!r} is not a valid "
                            f"{getattr(tp, '__name__', tp)}") from None

    def tag(self, doc: Document) -> TagResult:
        raise NotImplementedError

    def tag_batch(self, docs: Sequence[Document]) -> list[TagResult]:
        return [self.tag(doc) for doc in docs]


@contextlib.contextmanager
def paused_gc():
    """Pause the cyclic garbage collector while a batch builds many small, acyclic objects
    (span tuples, attribute dicts): its repeated scans cost a third of a 176-language batch.
    Reference counting still frees everything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_REGISTRY: dict[str, type[Tagger]] = {}
_INSTANCES: dict[tuple, Tagger] = {}
_builtins_loaded = False


def register(name: str, description: str = "") -> Callable[[type[Tagger]], type[Tagger]]:
    """Class decorator: `@register("char_length_v1", "…")`."""

    def wrap(cls: type[Tagger]) -> type[Tagger]:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
            raise UserError(f"tagger name {name!r} is registered twice ({existing.__module__}.{existing.__qualname__} "
                            f"and {cls.__module__}.{cls.__qualname__})")
        # a subclass registered under a second name needs its own `name`
        cls = cls if "name" not in cls.__dict__ or cls.__dict__["name"] in ("", name) else \
            type(cls.__name__, (cls,), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
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
    """Import user modules (dotted names, .py files or package directories) so they register.

    Modules written for Dolma (`from dolma import add_tagger, BaseTagger`, ...) load too: Dolma's
    tagger API is provided by `dolma_api` when the real package is not installed. Runs in the
    driver and again in every worker, before taggers are built.
    """
    modules = list(modules)
    if not modules:
        return
    from dolma_tools.taggers import dolma_api

    dolma_api.install()
    for spec in modules:
        if spec.endswith(".py") or os.path.sep in spec or os.path.isdir(spec):
            path = os.path.abspath(spec)
            if not os.path.exists(path):
                raise UserError(f"tagger module not found: {spec}")
            # as Dolma: the module's directory is importable, so it can import its siblings
            if os.path.dirname(path) not in sys.path:
                sys.path.insert(0, os.path.dirname(path))
            if os.path.isdir(path):
                _import_user_module(spec, lambda: importlib.import_module(os.path.basename(path)))
                continue
            name = "dolma_tools_user_" + os.path.splitext(os.path.basename(path))[0]
            loaded = sys.modules.get(name)
            if loaded is not None and getattr(loaded, "__file__", None) != path:  # same name, another file
                name += "_" + hashlib.sha1(path.encode()).hexdigest()[:8]
                loaded = sys.modules.get(name)
            if loaded is not None:
                continue
            _import_user_module(spec, lambda: _exec_module_file(name, path), path)
        else:
            _import_user_module(spec, lambda: importlib.import_module(spec))
    dolma_api.adopt_registered()


def _exec_module_file(name: str, path: str) -> None:
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]  # a later attempt imports it again rather than a half-run module
        raise


def _import_user_module(spec: str, do_import: Callable[[], Any], path: str | None = None) -> None:
    """Run `do_import`; a failure inside the user's module is one line naming it, its line and the error."""
    try:
        do_import()
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything the user's code raises while importing
        where = _user_line(exc, path)
        hint = ""
        missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
        if missing and (missing == "dolma" or missing.startswith("dolma.")):
            from dolma_tools.taggers.dolma_api import PROVIDED

            hint = f" (dolma-tools provides Dolma's tagger API as {', '.join(PROVIDED)}; other Dolma modules are not available)"
        message = exc.msg if isinstance(exc, SyntaxError) else exc  # the file and line are named already
        raise UserError(f"cannot import tagger module {spec}{where}: {type(exc).__name__}: {message}{hint}") from None


def _user_line(exc: BaseException, path: str | None) -> str:
    """` (line N)`: where in the user's file the import failed, when we can tell."""
    if path is None:
        return ""
    if isinstance(exc, SyntaxError) and exc.filename == path and exc.lineno:
        return f" (line {exc.lineno})"
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line})" if line else ""


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


@dataclass(frozen=True)
class TaggerSpec:
    """A tagger name, its options, and the name its attribute keys use (`as=` renames)."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()
    alias: str | None = None

    @property
    def key_name(self) -> str:
        return self.alias or self.name

    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)


def parse_tagger_spec(spec: str, extra: Mapping[str, Any] | None = None) -> TaggerSpec:
    """`name[:key=value[,key=value...]]` -> TaggerSpec. `extra` options (from config) come first."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise UserError(f"empty tagger name in {spec!r}")
    options: dict[str, Any] = dict(extra or {})
    if rest:
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise UserError(f"tagger spec {spec!r}: expected key=value after ':', got {item!r} "
                                f"(e.g. ft_lang_id_doc_v1:model=/path/lid.bin)")
            options[key.strip()] = value.strip()
    alias = options.pop("as", None)
    return TaggerSpec(name=name, options=tuple(sorted((k, _hashable(v)) for k, v in options.items())),
                      alias=str(alias) if alias else None)


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def get_tagger(name: str, **options: Any) -> Tagger:
    """The process-wide instance of a tagger (models load once per worker).

    `name` may be a spec with options (`ft_lang_id_doc_v1:model=/path.bin`).
    """
    spec = parse_tagger_spec(name, options) if (":" in name or options) else TaggerSpec(name)
    key = (spec.name, spec.options)
    instance = _INSTANCES.get(key)
    if instance is None:
        instance = _INSTANCES[key] = tagger_class(spec.name)(**spec.option_dict())
    return instance
