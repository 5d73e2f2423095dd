"""Dolma's JSONPath dialect (jsonpath-rust 0.3), compiled once into Python closures.

Supported: `$` (and Dolma's `$@`), `.key`, `['key']`, `[n]` (negative from the end), `[a:b]`,
`[*]` / `.*`, `..key` (recursive descent), and filters `[?( ... )]` with `@`/`$` paths, literals
(numbers, strings, true, false, null, arrays), `== != < <= > >=`, `=~`/`~=` (regex), `in`, `nin`,
`size`, `anyOf`, `noneOf`, `subsetOf`, `&&`, `||`, `!` and parentheses. A bare path in a filter
is an existence test.

Semantics kept from jsonpath-rust 0.3 (checked against Dolma 1.2.1's mixer): a filter applied to
an array tests each element; applied to anything else (an object) it tests the value itself,
which is what Dolma's idiom `$.attributes[?(@.KEY && @.KEY[0] && @.KEY[0][2] > 0.5)]` relies
on. A pattern matches when it selects at least one value. An operator sees the list of values
each side selects: `==` needs both lists equal element by element (so a missing value `!=`
anything), only single numbers order, and `size`/`anyOf`/`subsetOf` are true when their left
side selects nothing. Ours: numbers are equal when their values are (Dolma 1.2.1: an integer
never equals a float, so `>= 1.0` misses the deduper's `1`); a one-number array literal `[2]` is
an array (Dolma parses it as an index path that never matches).
"""

from __future__ import annotations

import operator
import re
from typing import Any, Callable

from dolma_tools.errors import ConfigError

Values = list  # the values a path selects, in document order
Selector = Callable[[Any, Any], Values]  # (current node, root) -> values
Predicate = Callable[[Any, Any], bool]

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op>\.\.|==|!=|<=|>=|=~|~=|&&|\|\||\[\?\(|[$@.\[\]()*:,<>!])
    | (?P<name>[A-Za-z_][\w\-]*)
    )""", re.VERBOSE)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ConfigError(f"JSONPath {text!r}: cannot parse at {text[pos:pos + 20]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _number(token: str) -> int | float:
    return float(token) if any(c in token for c in ".eE") else int(token)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------
# Steps: each maps one node to the nodes it selects


def _key_step(name: str) -> Callable[[Any], Values]:
    def step(node: Any) -> Values:
        if isinstance(node, dict) and name in node:
            return [node[name]]
        return []
    return step


def _index_step(index: int) -> Callable[[Any], Values]:
    def step(node: Any) -> Values:
        if isinstance(node, list) and -len(node) <= index < len(node):
            return [node[index]]
        return []
    return step


def _slice_step(start: int | None, stop: int | None) -> Callable[[Any], Values]:
    def step(node: Any) -> Values:
        return node[start:stop] if isinstance(node, list) else []
    return step


def _wildcard(node: Any) -> Values:
    if isinstance(node, list):
        return list(node)
    if isinstance(node, dict):
        return list(node.values())
    return []


def _descendants(node: Any) -> Values:
    out = [node]
    for child in _wildcard(node):
        out.extend(_descendants(child))
    return out


def _descent_step(inner: Callable[[Any], Values]) -> Callable[[Any], Values]:
    def step(node: Any) -> Values:
        out: Values = []
        for sub in _descendants(node):
            out.extend(inner(sub))
        return out
    return step


def _filter_step(pred: Predicate) -> Callable[[Any, Any], Values]:
    def step(node: Any, root: Any) -> Values:
        if isinstance(node, list):
            return [el for el in node if pred(el, root)]
        return [node] if pred(node, root) else []
    return step


# ---------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value) or (kind is not None and token[0] != kind):
            want = value or kind or "more input"
            got = token[1] if token else "end of pattern"
            raise ConfigError(f"JSONPath {self.text!r}: expected {want!r}, got {got!r}")
        self.pos += 1
        return token

    def at(self, value: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "op" and token[1] == value

    # path := ('$' | '$@' | '@') segment*
    def path(self) -> tuple[str, list, bool]:
        """(root symbol, steps, simple) where simple means every step selects at most one value."""
        _, head = self.take(kind="op")
        if head not in ("$", "@"):
            raise ConfigError(f"JSONPath {self.text!r}: a path starts with $ or @, not {head!r}")
        if head == "$" and self.at("@"):  # Dolma's `$@.attributes[...]` form
            self.pos += 1
        steps: list = []
        simple = True
        while True:
            if self.at(".."):
                self.pos += 1
                _, inner = self._member_after_dot()
                if isinstance(inner, tuple):
                    inner = _key_step(inner[1])
                steps.append(("multi", _descent_step(inner)))
                simple = False
            elif self.at("."):
                self.pos += 1
                kind, step = self._member_after_dot()
                steps.append((kind, step))
                simple = simple and kind != "multi"
            elif self.at("["):
                self.pos += 1
                kind, step = self._bracket()
                steps.append((kind, step))
                simple = simple and kind != "multi"
            elif self.at("[?("):
                self.pos += 1
                pred = self.expression()
                self.take(")")
                self.take("]")
                steps.append(("multi", ("filter", pred)))
                simple = False
            else:
                return head, steps, simple

    def _member_after_dot(self) -> tuple[str, Callable]:
        token = self.peek()
        if token is not None and token[1] == "*":
            self.pos += 1
            return "multi", _wildcard
        if token is not None and token[0] == "num" and token[1].lstrip("-").isdigit():
            self.pos += 1  # `.0` names the key "0"
            return "one", ("key", token[1])
        _, name = self.take(kind="name")
        return "one", ("key", name)

    def _bracket(self) -> tuple[str, Any]:
        token = self.peek()
        if token is None:
            raise ConfigError(f"JSONPath {self.text!r}: unterminated [")
        if token[1] == "*":
            self.pos += 1
            self.take("]")
            return "multi", _wildcard
        if token[0] == "str":
            self.pos += 1
            keys = [_unquote(token[1])]
            while self.at(","):
                self.pos += 1
                keys.append(_unquote(self.take(kind="str")[1]))
            self.take("]")
            if len(keys) == 1:
                return "one", ("key", keys[0])
            steps = [_key_step(k) for k in keys]
            return "multi", lambda node: [v for s in steps for v in s(node)]
        start = stop = None
        if token[0] == "num":
            self.pos += 1
            start = int(token[1])
        if self.at(":"):
            self.pos += 1
            if self.peek() and self.peek()[0] == "num":
                stop = int(self.take(kind="num")[1])
            self.take("]")
            return "multi", _slice_step(start, stop)
        if start is None:
            raise ConfigError(f"JSONPath {self.text!r}: unsupported selector [{token[1]}")
        indices = [start]
        while self.at(","):
            self.pos += 1
            indices.append(int(self.take(kind="num")[1]))
        self.take("]")
        if len(indices) == 1:
            return "one", ("index", start)
        steps = [_index_step(i) for i in indices]
        return "multi", lambda node: [v for s in steps for v in s(node)]

    # expression := and ('||' and)*
    def expression(self) -> Predicate:
        left = self.conjunction()
        while self.at("||"):
            self.pos += 1
            right = self.conjunction()
            left = (lambda a, b: lambda node, root: a(node, root) or b(node, root))(left, right)
        return left

    def conjunction(self) -> Predicate:
        left = self.unary()
        while self.at("&&"):
            self.pos += 1
            right = self.unary()
            left = (lambda a, b: lambda node, root: a(node, root) and b(node, root))(left, right)
        return left

    def unary(self) -> Predicate:
        if self.at("!"):
            self.pos += 1
            inner = self.unary()
            return lambda node, root: not inner(node, root)
        if self.at("("):
            self.pos += 1
            inner = self.expression()
            self.take(")")
            return inner
        return self.comparison()

    def operand(self) -> tuple[str, Any]:
        token = self.peek()
        if token is None:
            raise ConfigError(f"JSONPath {self.text!r}: expected a value, got end of pattern")
        kind, value = token
        if kind == "op" and value in ("$", "@"):
            return "path", compile_path_parts(*self.path())
        self.pos += 1
        if kind == "num":
            return "literal", _number(value)
        if kind == "str":
            return "literal", _unquote(value)
        if kind == "name" and value in ("true", "false", "null"):
            return "literal", {"true": True, "false": False, "null": None}[value]
        if kind == "op" and value == "[":
            items = []
            while not self.at("]"):
                item_kind, item = self.operand()
                if item_kind != "literal":
                    raise ConfigError(f"JSONPath {self.text!r}: array literals hold literals only")
                items.append(item)
                if self.at(","):
                    self.pos += 1
            self.take("]")
            return "literal", items
        raise ConfigError(f"JSONPath {self.text!r}: unexpected {value!r}")

    def comparison(self) -> Predicate:
        left_kind, left = self.operand()
        token = self.peek()
        if token is not None and (token[1] in _SYMBOL_OPS or (token[0] == "name" and token[1] in _WORD_OPS)):
            self.pos += 1
            right_kind, right = self.operand()
            return _comparison(token[1], (left_kind, left), (right_kind, right), self.text)
        if token is not None and token[0] == "name" and token[1].lower() in _WORD_OPS_LOWER:
            raise ConfigError(f"JSONPath {self.text!r}: unknown operator {token[1]!r} "
                              f"(operators are case-sensitive: {', '.join(_WORD_OPS)})")
        if left_kind == "path":
            select = left
            return lambda node, root: bool(select(node, root))
        constant = _truthy(left)
        return lambda node, root: constant


_SYMBOL_OPS = ("==", "!=", "<", "<=", ">", ">=", "=~", "~=")
_WORD_OPS = ("in", "nin", "size", "anyOf", "noneOf", "subsetOf")
_WORD_OPS_LOWER = {op.lower() for op in _WORD_OPS}


def _truthy(value: Any) -> bool:
    return value not in (None, False)


# ---------------------------------------------------------------------------------------------
# Operators, with jsonpath-rust 0.3's semantics on the lists of values each side selects (a
# literal is one value; a path selects zero or more). Ours: numbers are equal when their values
# are (Dolma: 1 != 1.0), everywhere, including inside arrays and in the membership operators.


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value, booleans never equal to numbers, containers element-wise."""
    if is_number(a) and is_number(b):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(v, b[k]) for k, v in a.items())
    return a == b


def _equal_lists(lefts: Values, rights: Values) -> bool:
    # `==` pairs the two sides' values in order: `@.tags[*] == 'a'` is false for ['a', 'b'];
    # two missing values are equal
    return len(lefts) == len(rights) and all(json_equal(a, b) for a, b in zip(lefts, rights))


def _less(lefts: Values, rights: Values) -> bool:
    # ordering is for one number against one number only: strings, arrays, objects, booleans never order
    return (len(lefts) == 1 and len(rights) == 1 and is_number(lefts[0]) and is_number(rights[0])
            and lefts[0] < rights[0])


def _member(value: Any, choices: list) -> bool:
    return any(json_equal(value, choice) for choice in choices)


def _choices(rights: Values) -> list | None:
    """The right side of `in`: the first value's elements (array) or values (object)."""
    if not rights:
        return None
    first = rights[0]
    if isinstance(first, list):
        return first
    if isinstance(first, dict):
        return list(first.values())
    return None


def op_in(lefts: Values, rights: Values) -> bool:
    """Some left value is an element of the right array (or a value of the right object)."""
    choices = _choices(rights)
    return bool(lefts) and choices is not None and any(_member(v, choices) for v in lefts)


def op_any_of(lefts: Values, rights: Values) -> bool:
    """Some left value (or, for an array, some element of it) is in the right array.

    As jsonpath-rust 0.3: true when the left side selects nothing (a missing key matches).
    """
    if not lefts:
        return True
    if not rights or not isinstance(rights[0], list):
        return False
    choices = rights[0]
    for value in lefts:
        elements = value if isinstance(value, list) else [value]
        if any(_member(e, choices) for e in elements):
            return True
    return False


def op_subset_of(lefts: Values, rights: Values) -> bool:
    """Every element of the first left value (an array) is in the right array (non-empty).

    As jsonpath-rust 0.3: true when the left side selects nothing (a missing key matches).
    """
    if not lefts:
        return True
    if not rights or not isinstance(lefts[0], list) or not isinstance(rights[0], list) or not rights[0]:
        return False
    return all(_member(e, rights[0]) for e in lefts[0])


def _size_of(value: Any) -> int | None:
    if isinstance(value, str):
        return len(value.encode("utf-8"))  # bytes, as Rust's str::len
    if isinstance(value, (list, dict)):
        return len(value)
    return None


def op_size(lefts: Values, rights: Values) -> bool:
    """Every left value (string: UTF-8 bytes; array: elements; object: keys) has the right size.

    The size is the right number truncated toward zero, negative as 0 (Rust's `as usize`). As
    jsonpath-rust 0.3: true when the left side selects nothing (a missing key matches).
    """
    if not rights or not is_number(rights[0]):
        return False
    size = max(0, int(rights[0]))
    return all(_size_of(v) == size for v in lefts)


_LIST_OPS: dict[str, Callable[[Values, Values], bool]] = {
    "==": _equal_lists,
    "!=": lambda a, b: not _equal_lists(a, b),
    "<": _less,
    ">": lambda a, b: _less(b, a),
    "<=": lambda a, b: _less(a, b) or _equal_lists(a, b),
    ">=": lambda a, b: _less(b, a) or _equal_lists(a, b),
    "in": op_in,
    "nin": lambda a, b: not op_in(a, b),
    "anyOf": op_any_of,
    "noneOf": lambda a, b: not op_any_of(a, b),
    "subsetOf": op_subset_of,
    "size": op_size,
}


def _comparison(op: str, left: tuple[str, Any], right: tuple[str, Any], text: str) -> Predicate:
    if op in ("=~", "~="):
        if right[0] != "literal" or not isinstance(right[1], str):
            raise ConfigError(f"JSONPath {text!r}: {op} needs a regex string on its right")
        regex = re.compile(right[1])
        lsel = _as_selector(left)
        return lambda node, root: any(isinstance(v, str) and regex.search(v) for v in lsel(node, root))
    if op == "size" and right[0] == "literal" and not is_number(right[1]):
        raise ConfigError(f"JSONPath {text!r}: `size` needs a number on its right, got {right[1]!r}")
    if op in ("anyOf", "noneOf", "subsetOf") and right[0] == "literal" and not isinstance(right[1], list):
        raise ConfigError(f"JSONPath {text!r}: `{op}` needs an array on its right, e.g. ['a', 'b']")
    # fast path: a single-valued path against a literal (the common case in mixer configs)
    if left[0] == "path" and right[0] == "literal" and getattr(left[1], "single", None) and op in _FAST_OPS:
        return _FAST_OPS[op](left[1].single, right[1])
    lsel, rsel = _as_selector(left), _as_selector(right)
    test = _LIST_OPS[op]
    return lambda node, root: test(lsel(node, root), rsel(node, root))


def _fast_equal(get: Callable[[Any, Any], Any], literal: Any) -> Predicate:
    def equal(node: Any, root: Any) -> bool:
        value = get(node, root)
        return value is not _MISSING and json_equal(value, literal)
    return equal


def _fast_order(op: str) -> Callable[[Callable[[Any, Any], Any], Any], Predicate]:
    compare = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]

    def build(get: Callable[[Any, Any], Any], literal: Any) -> Predicate:
        if not is_number(literal):  # nothing but numbers orders: only <=/>= match, by equality
            return _fast_equal(get, literal) if op in ("<=", ">=") else (lambda node, root: False)

        def numeric(node: Any, root: Any) -> bool:
            value = get(node, root)
            return is_number(value) and compare(value, literal)
        return numeric
    return build


def _fast_not_equal(get: Callable[[Any, Any], Any], literal: Any) -> Predicate:
    equal = _fast_equal(get, literal)
    return lambda node, root: not equal(node, root)  # a missing value is not equal


_FAST_OPS: dict[str, Callable[[Callable[[Any, Any], Any], Any], Predicate]] = {
    "==": _fast_equal,
    "!=": _fast_not_equal,
    "<": _fast_order("<"),
    "<=": _fast_order("<="),
    ">": _fast_order(">"),
    ">=": _fast_order(">="),
}


def _as_selector(operand: tuple[str, Any]) -> Selector:
    kind, value = operand
    if kind == "path":
        return value
    return lambda node, root: [value]


# ---------------------------------------------------------------------------------------------
# Compilation of a parsed path into a selector

_MISSING = object()


class _PathSelector:
    """Callable (node, root) -> values; `single` is a fast one-value getter for plain chains."""

    __slots__ = ("head", "run", "single")

    def __init__(self, head: str, run: Callable[[Any, Any], Values], single: Callable[[Any, Any], Any] | None) -> None:
        self.head = head
        self.run = run
        self.single = single

    def __call__(self, node: Any, root: Any) -> Values:
        return self.run(root if self.head == "$" else node, root)


def _chain_getter(keys: list[tuple[str, Any]]) -> Callable[[Any], Any]:
    """A getter for `.a.b[0][2]`-style chains: the value, or _MISSING."""
    def get(node: Any) -> Any:
        for kind, key in keys:
            if kind == "key":
                if type(node) is not dict:
                    return _MISSING
                node = node.get(key, _MISSING)
                if node is _MISSING:
                    return _MISSING
            else:
                if type(node) is not list or not -len(node) <= key < len(node):
                    return _MISSING
                node = node[key]
        return node
    return get


def compile_path_parts(head: str, steps: list, simple: bool) -> _PathSelector:
    if simple:
        get = _chain_getter([s[1] for s in steps])

        def run_simple(node: Any, root: Any) -> Values:
            value = get(node)
            return [] if value is _MISSING else [value]
        def single(node: Any, root: Any) -> Any:
            return get(root if head == "$" else node)

        return _PathSelector(head, run_simple, single)

    funcs: list[Callable[[Any, Any], Values]] = []
    for kind, step in steps:
        if isinstance(step, tuple) and step[0] == "key":
            funcs.append(_ignore_root(_key_step(step[1])))
        elif isinstance(step, tuple) and step[0] == "index":
            funcs.append(_ignore_root(_index_step(step[1])))
        elif isinstance(step, tuple) and step[0] == "filter":
            funcs.append(_filter_step(step[1]))
        else:
            funcs.append(_ignore_root(step))

    def run(node: Any, root: Any) -> Values:
        nodes = [node]
        for func in funcs:
            nxt: Values = []
            for n in nodes:
                nxt.extend(func(n, root))
            if not nxt:
                return nxt
            nodes = nxt
        return nodes
    return _PathSelector(head, run, None)


def _ignore_root(step: Callable[[Any], Values]) -> Callable[[Any, Any], Values]:
    return lambda node, root: step(node)


class JsonPath:
    """A compiled JSONPath: `select(doc)` returns the selected values, `matches(doc)` whether any."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            parser = _Parser(text)
            head, steps, simple = parser.path()
            if parser.peek() is not None:
                raise ConfigError(f"JSONPath {text!r}: unexpected {parser.peek()[1]!r}")
            if head != "$":
                raise ConfigError(f"JSONPath {text!r}: a pattern starts with $")
            self._selector = compile_path_parts(head, steps, simple)
        except ConfigError:
            raise
        except re.error as exc:
            raise ConfigError(f"JSONPath {text!r}: invalid regular expression ({exc})") from None
        except (ValueError, OverflowError) as exc:
            raise ConfigError(f"JSONPath {text!r}: {exc}") from None
        except (RecursionError, MemoryError):
            raise ConfigError(f"JSONPath {text[:80]!r}...: too deeply nested") from None
        self._run = self._selector.run

    def select(self, doc: Any) -> Values:
        return self._run(doc, doc)

    def matches(self, doc: Any) -> bool:
        return bool(self._run(doc, doc))

    def __repr__(self) -> str:
        return f"JsonPath({self.text!r})"
