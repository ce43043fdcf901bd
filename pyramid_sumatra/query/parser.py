"""Parse the record query language (docs/query.md) into a :mod:`tree`.

A hand-written tokenizer and recursive-descent parser: the grammar is a dozen lines,
and a hand-written one names the exact position and what was expected there.

    query   := or EOF
    or      := and ("or" and)*
    and     := unary ("and" unary)*
    unary   := "not" unary | "(" or ")" | term
    term    := FIELD (OP value | "in" "(" value ("," value)* ")" | "has" value | "exists")
    value   := NUMBER | 'text' | "text" | WORD

Every input is bounded (length, terms, nesting, values of an ``in``): a query is
client input, so parsing and evaluating it must stay small.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..records import normalise_timestamp, unstorable
from ..services.errors import InvalidInput
from .fields import field_names, kind_of
from .tree import And, Compare, Exists, Has, In, Node, Not, Or, Value

MAX_LENGTH = 2_000
MAX_TERMS = 50
MAX_DEPTH = 20
MAX_VALUES = 100

OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "~")
KEYWORDS = ("and", "or", "not", "in", "has", "exists")
_WORD = re.compile(r"[A-Za-z0-9_.:\-+/@]+")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_OPERATOR = re.compile(r"!=|<=|>=|=|<|>|~")
_SPACE = re.compile(r"\s+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MINUTES = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")


class QueryError(ValueError):
    """A query that cannot be parsed: where (0-based character offset) and what was expected."""

    def __init__(self, position: int, expected: str, found: str = ""):
        self.position, self.expected, self.found = position, expected, found
        found = f", found {found}" if found else ""
        super().__init__(f"at position {position}: expected {expected}{found}")


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "string", "op", "(", ")", ",", "end"
    text: str  # the value (a string's content, unescaped)
    position: int
    end: int = 0  # just after the token (a quoted string's closing quote)

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the query"
        if self.kind == "string":
            return f"text {self.text[:30]!r}"
        return repr(self.text[:30])


def tokenize(text: str) -> list[Token]:
    tokens, i, n = [], 0, len(text)
    while i < n:
        space = _SPACE.match(text, i)
        if space:
            i = space.end()
            continue
        ch = text[i]
        if ch in "(),":
            tokens.append(Token(ch, ch, i))
            i += 1
        elif ch in "'\"":
            tokens.append(_string(text, i))
            i = tokens[-1].end
        elif (op := _OPERATOR.match(text, i)) is not None:
            tokens.append(Token("op", op.group(), i))
            i = op.end()
        elif (word := _WORD.match(text, i)) is not None:
            tokens.append(Token("word", word.group(), i))
            i = word.end()
        else:
            raise QueryError(i, "a field, an operator, a value or a parenthesis",
                             repr(ch))
    tokens.append(Token("end", "", n))
    return tokens


def _string(text: str, start: int) -> Token:
    quote, i, out = text[start], start + 1, []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == quote:
            return Token("string", "".join(out), start, i + 1)
        else:
            out.append(ch)
            i += 1
    raise QueryError(start, f"a closing {quote} for the text starting here")


class _Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.i = 0
        self.terms = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def keyword(self, word: str) -> bool:
        tok = self.tok
        if tok.kind == "word" and tok.text.lower() == word:
            self.i += 1
            return True
        return False

    def fail(self, expected: str) -> QueryError:
        return QueryError(self.tok.position, expected, self.tok.describe())

    def parse(self) -> Node:
        node = self.or_(0)
        if self.tok.kind != "end":
            raise self.fail("'and', 'or' or the end of the query")
        return node

    def or_(self, depth: int) -> Node:
        items = [self.and_(depth)]
        while self.keyword("or"):
            items.append(self.and_(depth))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_(self, depth: int) -> Node:
        items = [self.unary(depth)]
        while self.keyword("and"):
            items.append(self.unary(depth))
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self, depth: int) -> Node:
        if depth >= MAX_DEPTH:
            raise self.fail(f"at most {MAX_DEPTH} levels of 'not' and parentheses")
        if self.keyword("not"):
            return Not(self.unary(depth + 1))
        if self.tok.kind == "(":
            self.i += 1
            node = self.or_(depth + 1)
            if self.tok.kind != ")":
                raise self.fail("')'")
            self.i += 1
            return node
        return self.term()

    def term(self) -> Node:
        tok = self.tok
        if tok.kind != "word" or tok.text.lower() in KEYWORDS:
            raise self.fail("a field name, 'not' or '('")
        field, kind = tok.text, kind_of(tok.text)
        if kind is None:
            raise QueryError(tok.position, f"a field name ({field_names()})",
                             f"unknown field {field[:50]!r}")
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QueryError(tok.position, f"at most {MAX_TERMS} terms")
        self.i += 1
        if self.keyword("exists"):
            return Exists(field)
        if self.keyword("has"):
            if kind != "tags":
                raise QueryError(self.tokens[self.i - 1].position, "'has' after tags only")
            return Has(str(self.value(kind, "has")))
        if kind == "tags":
            raise self.fail("'has' or 'exists' after tags")
        if self.keyword("in"):
            return self.in_list(field, kind)
        if self.tok.kind != "op":
            raise self.fail("an operator (" + " ".join(OPERATORS) + ", in, has, exists)")
        op = self.tok.text
        if op == "~" and kind in ("number", "time"):
            raise self.fail(f"an operator other than '~' for {field} (not text)")
        self.i += 1
        return Compare(field, op, self.value(kind, op))

    def in_list(self, field: str, kind: str) -> Node:
        if self.tok.kind != "(":
            raise self.fail("'(' after in")
        self.i += 1
        values = [self.value(kind, "=")]
        while self.tok.kind == ",":
            self.i += 1
            if len(values) >= MAX_VALUES:
                raise self.fail(f"at most {MAX_VALUES} values in a list")
            values.append(self.value(kind, "="))
        if self.tok.kind != ")":
            raise self.fail("',' or ')'")
        self.i += 1
        return In(field, tuple(dict.fromkeys(values)))

    def value(self, kind: str, op: str) -> Value:
        tok = self.tok
        if tok.kind not in ("word", "string") or (tok.kind == "word"
                                                  and tok.text.lower() in KEYWORDS):
            raise self.fail("a value (a number, a word or quoted text)")
        if unstorable(tok.text):
            raise QueryError(tok.position, "a value without NUL characters or lone surrogates")
        self.i += 1
        literal = _literal(tok)
        if kind == "time":
            return _timestamp(tok)
        if kind == "number":
            if isinstance(literal, bool) or not isinstance(literal, int | float):
                raise QueryError(tok.position, "a number", tok.describe())
            return float(literal)
        if kind in ("text", "optional_text", "tags") or op == "~":
            return tok.text  # text fields hold text: version = 1.2 means "1.2"
        if isinstance(literal, bool) and op not in ("=", "!="):
            raise QueryError(tok.position, "a number or text (true/false only with = and !=)")
        return literal


def _literal(tok: Token) -> Value:
    """What a value token means: quoted text stays text; a bare word may be a number."""
    if tok.kind == "string":
        return tok.text
    if tok.text.lower() in ("true", "false"):
        return tok.text.lower() == "true"
    if _NUMBER.fullmatch(tok.text):
        if re.fullmatch(r"[-+]?\d+", tok.text):
            return int(tok.text)
        number = float(tok.text)
        if not math.isfinite(number):
            raise QueryError(tok.position, "a number in range", tok.describe())
        return number
    return tok.text


def _timestamp(tok: Token) -> str:
    text = tok.text.strip()
    if _DATE.fullmatch(text):
        text += " 00:00:00"
    elif _MINUTES.fullmatch(text):
        text += ":00"
    try:
        return normalise_timestamp(text)
    except InvalidInput:
        raise QueryError(tok.position, "a timestamp 'YYYY-MM-DD[ HH:MM[:SS]][+HH:MM]'",
                         tok.describe()) from None


def parse(text: str) -> Node:
    """The tree of query ``text``; QueryError naming the position and what was expected."""
    if len(text) > MAX_LENGTH:
        raise QueryError(MAX_LENGTH, f"a query of at most {MAX_LENGTH} characters")
    if not text.strip():
        raise QueryError(0, "a query (e.g. params.tau_m > 5)", "nothing")
    return _Parser(text).parse()
