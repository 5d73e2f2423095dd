"""Natural-language text inside source code, measured as StarCoder's filters (and Dolma's
`code_starcoder_taggers_*`) measure it.

- Python: docstrings of modules, classes and (non-async) functions, cleaned by `ast.get_docstring`,
  sorted by (kind, name) and joined by newlines, then a newline, then every comment with its `#`
  characters removed, all stripped. A file that does not parse has no docstrings; one that the
  `tokenize` module rejects has no comments.
- Other languages: the characters of pygments' `Comment.Single` and `Comment.Multiline` tokens
  (not other comment kinds: preprocessor lines, hashbangs, doc comments of some lexers).
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
import warnings
from collections import deque
from typing import Any

_DOCSTRING_KINDS: dict[type, str] = {ast.ClassDef: "Class", ast.FunctionDef: "Function/Method", ast.Module: "Module"}

# Functions and classes sit only in statement lists, so a walk that enters only statements, except
# handlers and match cases (and only their statement lists) meets every docstring owner, in the
# breadth-first order of `ast.walk`, without visiting the expressions that make up most of a tree.
_BLOCK_FIELDS = ("body", "handlers", "orelse", "finalbody", "cases")
_BLOCKS_OF: dict[type, tuple[str, ...]] = {
    cls: tuple(f for f in cls._fields if f in _BLOCK_FIELDS)
    for cls in [ast.Module, ast.ExceptHandler, getattr(ast, "match_case", ast.Module), *ast.stmt.__subclasses__()]
}

# Comments of code that parses, found without the (slow, pure-Python) tokenize module: outside
# string literals every `#` starts a comment, and in valid code every quote starts a literal, so
# skipping literals whole leaves exactly the comments. Only for Python < 3.12, whose tokenize this
# reproduces (3.12 tokenizes f-strings differently), and only for text without `\r` or `\f`, which
# tokenize treats differently in comment-only lines and indentation.
_COMMENT_OR_LITERAL = re.compile("|".join([
    r"(#[^\n]*)",
    r"'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''",
    r'"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""',
    r"'[^'\\\n]*(?:\\.[^'\\\n]*)*'",
    r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"',
]), re.DOTALL)
_FAST_COMMENTS = sys.version_info < (3, 12)


def python_natural_text(source: str) -> str:
    """Docstrings, then comments without `#`, stripped (StarCoder's `get_text_python`)."""
    tree = _parse(source)
    docstrings = "\n".join(python_docstrings(tree)) if tree is not None else ""
    return (docstrings + "\n" + python_comments(source, parses=tree is not None).replace("#", "")).strip()


def _parse(source: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():  # invalid escapes and the like are the file's business
            warnings.simplefilter("ignore")
            return ast.parse(source)
    except Exception:  # noqa: BLE001 - any failure means "no docstrings", as in StarCoder
        return None


def python_docstrings(tree: ast.Module) -> list[str]:
    """Non-empty cleaned docstrings, sorted by (kind, name); ties keep `ast.walk`'s order."""
    found: list[tuple[str, str, str]] = []
    queue: deque[Any] = deque([tree])
    while queue:
        node = queue.popleft()
        kind = _DOCSTRING_KINDS.get(type(node))
        if kind is not None:
            doc = ast.get_docstring(node)
            if doc:
                found.append((kind, getattr(node, "name", ""), doc))
        for field in _BLOCKS_OF.get(type(node), ()):
            queue.extend(getattr(node, field))
    found.sort(key=lambda item: (item[0], item[1]))
    return [doc for _, _, doc in found]


def python_comments(source: str, parses: bool) -> str:
    """All comment tokens (with their `#`) concatenated; "" when tokenize fails."""
    if "#" not in source:
        return ""
    if parses and _FAST_COMMENTS and "\r" not in source and "\x0c" not in source:
        return "".join(_COMMENT_OR_LITERAL.findall(source))
    try:
        return "".join(tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                       if tok.type == tokenize.COMMENT)
    except Exception:  # noqa: BLE001 - TokenError, IndentationError, ...: no comments
        return ""


class CommentCounter:
    """Comment characters per language, with one pygments lexer per language (Dolma builds one
    per document)."""

    def __init__(self) -> None:
        from pygments.token import Comment

        self._counted = (Comment.Single, Comment.Multiline)
        self._lexers: dict[str, Any] = {}

    def lexer(self, language: str) -> Any:
        """pygments' lexer for a language name; LookupError when pygments has none."""
        if language not in self._lexers:
            from pygments.lexers import get_lexer_by_name
            from pygments.util import ClassNotFound

            try:
                self._lexers[language] = get_lexer_by_name(language)
            except ClassNotFound:
                self._lexers[language] = None
        lexer = self._lexers[language]
        if lexer is None:
            raise LookupError(f"pygments has no lexer named {language!r}")
        return lexer

    def comment_chars(self, text: str, language: str) -> int:
        single, multi = self._counted
        return sum(len(value) for kind, value in self.lexer(language).get_tokens(text)
                   if kind == single or kind == multi)

    def natural_language_ratio(self, text: str, language: str) -> float:
        """StarCoder's comment ratio. Raises ZeroDivisionError on empty text, LookupError for a
        language pygments does not know."""
        if language == "python":
            return len(python_natural_text(text)) / len(text)
        return self.comment_chars(text, language) / len(text)
