"""Document filters: include/exclude patterns in JSONPath, jq or a safe Python expression.

Every pattern is compiled once per stream (per worker process) into a callable `doc -> bool`.
Keep = (no include pattern, or some include pattern matches) and no exclude pattern matches,
as Dolma. The filter reports which pattern removed a document, for the run summary.

- JSONPath: Dolma's dialect (see `jsonpath.py`): matches when it selects a value.
- jq (`syntax: jq`): Dolma's truthiness (false/null never, numbers != 0, non-empty strings,
  arrays and objects). An include matches when all outputs are truthy and there is at least
  one; an exclude fires when any output is truthy. A jq runtime error (Dolma aborts the shard)
  counts as a non-match and is reported, or is fatal under `--strict`.
- Python (`syntax: python`): one expression over the document's top-level fields, e.g.
  `attributes['exp__gopher_v1__word_count'][0][2] < 50`. Parsed with `ast` against a whitelist:
  no attribute access, no dunder names, no builtins except a few pure functions. A missing key
  or index makes the expression a non-match, like a missing JSONPath.
"""

from __future__ import annotations

import ast
import math
import re
from typing import Any, Callable

import orjson

from dolma_tools.errors import ConfigError
from dolma_tools.mixers.jsonpath import JsonPath

Matcher = Callable[[dict], bool]
SYNTAXES = ("jsonpath", "jq", "python")


class PatternError(Exception):
    """A pattern failed at run time on one document (jq runtime errors)."""


# ---------------------------------------------------------------------------------------------
# jq


def jq_truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return True


# jq can read the worker's environment (`env`, `$ENV`) and files (`import`/`include` with a
# search path). Filters come from config files that may be shared, and their outputs can reach
# the written documents (`$...` replacements), so both are shut off: the environment is replaced
# by an empty object, and module directives cannot follow the definitions we put first.
_JQ_SANDBOX_PREFIX = "def env: {}; def input_filename: null; def get_search_list: []; {} as $ENV | ("
_JQ_MODULE_DIRECTIVE = re.compile(r"^\s*(import|include|module)\b")


def compile_jq(program: str):
    try:
        import jq
    except ImportError as exc:  # pragma: no cover - jq is a dependency
        raise ConfigError("syntax: jq needs the `jq` package (pip install jq)") from exc
    if _JQ_MODULE_DIRECTIVE.match(program):
        raise ConfigError(f"jq program {program!r}: import/include/module directives are not allowed")
    try:
        return jq.compile(_JQ_SANDBOX_PREFIX + program + "\n)")
    except ValueError as exc:
        message = str(exc).replace(_JQ_SANDBOX_PREFIX, "")
        raise ConfigError(f"jq program {program!r} does not compile: {message}") from None


def jq_outputs(compiled, doc: dict, cache: dict | None = None) -> list:
    """All outputs of a jq program on `doc` (the JSON text is serialised once per document)."""
    text = None if cache is None else cache.get("json")
    if text is None:
        text = orjson.dumps(doc).decode()
        if cache is not None:
            cache["json"] = text
    try:
        return compiled.input_text(text).all()
    except ValueError as exc:
        raise PatternError(str(exc).splitlines()[0] if str(exc) else "jq error") from None


# ---------------------------------------------------------------------------------------------
# Python expressions

SAFE_FUNCTIONS: dict[str, Any] = {
    "len": len, "min": min, "max": max, "abs": abs, "sum": sum, "any": any, "all": all,
    "float": float, "int": int, "str": str, "bool": bool, "round": round, "sorted": sorted,
    "log": math.log, "sqrt": math.sqrt,
}
_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot,
    ast.Subscript, ast.Slice, ast.Constant, ast.Name, ast.Load, ast.Store, ast.List, ast.Tuple,
    ast.IfExp, ast.Call, ast.GeneratorExp, ast.ListComp, ast.comprehension,
)
# what a filter may raise on odd document values: a non-match, never a crashed file
_LOOKUP_ERRORS = (KeyError, IndexError, TypeError, NameError, ValueError, ArithmeticError)


def check_python_expression(source: str) -> ast.Expression:
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"python filter {source!r} is not an expression: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ConfigError(f"python filter {source[:80]!r}...: too deeply nested") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ConfigError(f"python filter {source!r}: {type(node).__name__} is not allowed "
                              "(only comparisons, arithmetic, subscripts and "
                              f"{', '.join(sorted(SAFE_FUNCTIONS))})")
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            raise ConfigError(f"python filter {source!r}: name {node.id!r} is not allowed")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in SAFE_FUNCTIONS or node.keywords:
                raise ConfigError(f"python filter {source!r}: only calls to "
                                  f"{', '.join(sorted(SAFE_FUNCTIONS))} are allowed")
        if isinstance(node, ast.Constant) and isinstance(node.value, (bytes, complex)):
            raise ConfigError(f"python filter {source!r}: constant {node.value!r} is not allowed")
    return tree


def compile_python(source: str) -> Callable[[dict], Any]:
    """An evaluator for one expression; names are the document's top-level fields."""
    try:
        code = compile(check_python_expression(source), "<filter>", "eval")
    except (RecursionError, MemoryError):
        raise ConfigError(f"python filter {source[:80]!r}...: too deeply nested") from None
    env = {**SAFE_FUNCTIONS, "__builtins__": {}}

    def evaluate(doc: dict) -> Any:
        # one flat scope (generator expressions see globals, not eval's locals); env wins
        return eval(code, {**doc, **env})  # noqa: S307 - whitelisted AST, no builtins
    return evaluate


# ---------------------------------------------------------------------------------------------
# A stream's filter


def compile_matcher(pattern: str, syntax: str, *, include: bool,
                    on_error: Callable[[str, PatternError], None] | None = None) -> Callable[[dict, dict], bool]:
    """`match(doc, cache) -> bool`; `cache` holds per-document state shared across patterns.

    A jq runtime error calls `on_error(pattern, error)` (which may raise) and is a non-match.
    """
    if syntax == "jsonpath":
        path = JsonPath(pattern)
        run = path._run
        return lambda doc, cache: bool(run(doc, doc))
    if syntax == "jq":
        compiled = compile_jq(pattern)

        def jq_match(doc: dict, cache: dict) -> bool:
            try:
                outputs = jq_outputs(compiled, doc, cache)
            except PatternError as exc:
                if on_error is not None:
                    on_error(pattern, exc)
                return False
            if include:
                return bool(outputs) and all(jq_truthy(v) for v in outputs)
            return any(jq_truthy(v) for v in outputs)
        return jq_match
    if syntax == "python":
        evaluate = compile_python(pattern)

        def python_match(doc: dict, cache: dict) -> bool:
            try:
                return bool(evaluate(doc))
            except _LOOKUP_ERRORS:
                return False
        return python_match
    raise ConfigError(f"unknown filter syntax {syntax!r} (use one of {', '.join(SYNTAXES)})")


class DocumentFilter:
    """Compiled include/exclude patterns of one stream."""

    def __init__(self, include: list[str], exclude: list[str], syntax: str = "jsonpath",
                 on_error: Callable[[str, PatternError], None] | None = None) -> None:
        syntax = (syntax or "jsonpath").lower()
        if syntax not in SYNTAXES:
            raise ConfigError(f"unknown filter syntax {syntax!r} (use one of {', '.join(SYNTAXES)})")
        self.syntax = syntax
        self.include_patterns = list(include)
        self.exclude_patterns = list(exclude)
        self.include = [compile_matcher(p, syntax, include=True, on_error=on_error) for p in include]
        self.exclude = [compile_matcher(p, syntax, include=False, on_error=on_error) for p in exclude]

    def reason_to_remove(self, doc: dict) -> str | None:
        """None to keep the document, else the reason (`include` or `exclude: <pattern>`)."""
        cache: dict = {}
        if self.include:
            for match in self.include:
                if match(doc, cache):
                    break
            else:
                return "include"
        for pattern, match in zip(self.exclude_patterns, self.exclude):
            if match(doc, cache):
                return "exclude: " + pattern
        return None
