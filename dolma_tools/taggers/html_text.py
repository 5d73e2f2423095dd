"""Length of the visible text of an HTML page, as StarCoder's HTML filter measures it.

That filter (used by Dolma's `code_starcoder_taggers_*`) parses the page with BeautifulSoup's
`html.parser` builder, removes `<script>` and `<style>` elements and takes `get_text()`. We need
only the length of that text, so instead of building BeautifulSoup's tree we listen to the same
standard-library `HTMLParser` events and apply the rules that decide which characters the tree's
text would hold (beautifulsoup4 4.15 semantics):

- character data accumulates until the next tag, comment, declaration or processing instruction;
  a run made only of ASCII whitespace then becomes one "\\n" (or " " without a newline), unless a
  `<pre>` or `<textarea>` is open;
- strings inside `<rt>`, `<rp>`, `<template>`, `<script>` and `<style>` are not text (they get
  special string classes that `get_text()` skips); nor are comments, doctypes, declarations and
  processing instructions; CDATA sections are, unless inside a removed `<script>`/`<style>`;
- an end tag closes the most recent open element of that name and everything opened after it,
  and is ignored when none is open; void elements (`<br>`, `<img>`, ...) close at once, and
  their first explicit end tag afterwards is ignored;
- `&name;` becomes the HTML5 entity's characters (or `&name` when unknown), `&#n;` one character.
"""

from __future__ import annotations

from html.entities import html5
from html.parser import HTMLParser

_VOID_ELEMENTS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "menuitem", "meta", "param",
    "source", "track", "wbr", "basefont", "bgsound", "command", "frame", "image", "isindex", "nextid", "spacer",
})
_KEEPS_WHITESPACE = frozenset({"pre", "textarea"})
_NOT_TEXT_INSIDE = frozenset({"rt", "rp", "style", "script", "template"})
_REMOVED = frozenset({"script", "style"})
_ASCII_SPACES = " \n\t\x0c\r"
# the characters numeric references to ASCII whitespace produce; every other reference is one
# non-whitespace character (or U+FFFD), whose identity does not matter for a length
_SPACE_CODEPOINTS = {ord(c): c for c in _ASCII_SPACES}


def _entities() -> dict[str, str]:
    """Entity name (without `;`) -> characters; of `name` and `name;` the first in sorted order wins."""
    table: dict[str, str] = {}
    for name, chars in sorted(html5.items()):
        table.setdefault(name[:-1] if name.endswith(";") else name, chars)
    return table


_ENTITIES = _entities()


def _numeric_reference(name: str) -> str:
    """The character `&#<name>;` stands for, as far as a length cares. The standard library's
    parser hands over only digits (`123`) or `x` and hex digits (`x7b`), so `int` cannot fail."""
    number = int(name[1:], 16) if name[:1] in ("x", "X") else int(name)
    return _SPACE_CODEPOINTS.get(number, "x")


class _TextLength(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.text_length = 0
        self._pending: list[str] = []
        self._stack: list[str] = []  # open elements, innermost last
        self._open: dict[str, int] = {}
        self._keep_ws = 0  # open <pre>/<textarea>
        self._hidden = 0  # open elements whose strings are not text
        self._removed = 0  # open <script>/<style>
        self._closed_voids: list[str] = []

    # -- tree bookkeeping -------------------------------------------------------------------------

    def _flush(self, cdata: bool = False) -> None:
        """End the current string: count it if `get_text()` of the cleaned tree would include it."""
        if not self._pending:
            return
        data = "".join(self._pending)
        self._pending = []
        if not self._keep_ws and not data.strip(_ASCII_SPACES):  # whitespace only (or empty)
            data = "\n" if "\n" in data else " "
        if not self._removed and (cdata or not self._hidden):
            self.text_length += len(data)

    def _skip(self, data: str) -> None:
        """A comment, declaration or processing instruction: ends the current string, is no text."""
        self._flush()

    def _push(self, tag: str) -> None:
        self._flush()
        self._stack.append(tag)
        self._open[tag] = self._open.get(tag, 0) + 1
        self._count(tag, 1)

    def _close(self, tag: str) -> None:
        self._flush()
        if not self._open.get(tag):
            return
        while self._stack:
            top = self._stack.pop()
            self._open[top] -= 1
            self._count(top, -1)
            if top == tag:
                return

    def _count(self, tag: str, step: int) -> None:
        if tag in _KEEPS_WHITESPACE:
            self._keep_ws += step
        if tag in _NOT_TEXT_INSIDE:
            self._hidden += step
        if tag in _REMOVED:
            self._removed += step

    # -- HTMLParser events ------------------------------------------------------------------------

    def handle_starttag(self, tag, attrs):
        self._push(tag)
        if tag in _VOID_ELEMENTS:
            self._close(tag)
            self._closed_voids.append(tag)

    def handle_startendtag(self, tag, attrs):
        self._push(tag)
        self._close(tag)

    def handle_endtag(self, tag):
        if tag in self._closed_voids:
            self._closed_voids.remove(tag)
        else:
            self._close(tag)

    def handle_data(self, data):
        self._pending.append(data)

    def handle_charref(self, name):
        self._pending.append(_numeric_reference(name))

    def handle_entityref(self, name):
        self._pending.append(_ENTITIES.get(name, "&" + name))

    def unknown_decl(self, data):
        self._flush()
        if data.upper().startswith("CDATA["):
            self._pending.append(data[len("CDATA["):])
            self._flush(cdata=True)
        else:
            self._skip(data)

    handle_comment = handle_decl = handle_pi = _skip


def visible_text_length(html: str) -> int:
    """len(BeautifulSoup(html, "html.parser").get_text()) once `<script>`/`<style>` are removed.

    Raises what the parser raises on markup it cannot handle (the caller scores -1, as Dolma)."""
    parser = _TextLength()
    parser.feed(html)
    parser.close()
    parser._flush()
    return parser.text_length
