"""The query language: parser (good and bad input, error positions, bounds) and the
reference evaluator's rules (docs/query.md)."""

from __future__ import annotations

import pytest

from pyramid_sumatra.query import And, Compare, Exists, Has, In, Not, Or, QueryError, matches, parse
from pyramid_sumatra.query import parser as query_parser
from pyramid_sumatra.services.search import interpret_search


@pytest.mark.parametrize("text, tree", [
    ("params.tau_m >= 5", Compare("params.tau_m", ">=", 5)),
    ("params.solver.tol < 1e-6", Compare("params.solver.tol", "<", 1e-6)),
    ("duration<60", Compare("duration", "<", 60.0)),
    ("duration >= -1.5", Compare("duration", ">=", -1.5)),
    ("version = 1.2", Compare("version", "=", "1.2")),  # text fields hold text
    ("params.distr = uniform", Compare("params.distr", "=", "uniform")),
    ("params.distr = 'uniform'", Compare("params.distr", "=", "uniform")),
    ('reason ~ "it\'s \\"x\\""', Compare("reason", "~", 'it\'s "x"')),
    ("params.flag = TRUE", Compare("params.flag", "=", True)),
    ("params.n = '5'", Compare("params.n", "=", "5")),
    ("timestamp >= 2024-01-02", Compare("timestamp", ">=", "2024-01-02 00:00:00")),
    ("timestamp < '2024-01-02 10:30'", Compare("timestamp", "<", "2024-01-02 10:30:00")),
    ("timestamp < '2024-01-02T10:30:00+02:00'", Compare("timestamp", "<", "2024-01-02 08:30:00")),
    ("tags has calib", Has("calib")),
    ("params.x exists", Exists("params.x")),
    ("user in (ann, 'bob', ann)", In("user", ("ann", "bob"))),
    ("label != x", Compare("label", "!=", "x")),
    ("not label = a or label = b and label = c",
     Or((Not(Compare("label", "=", "a")),
         And((Compare("label", "=", "b"), Compare("label", "=", "c")))))),
    ("(label = a OR label = b) AnD not (duration > 1)",
     And((Or((Compare("label", "=", "a"), Compare("label", "=", "b"))),
          Not(Compare("duration", ">", 1.0))))),
])
def test_parses(text, tree):
    assert parse(text) == tree


@pytest.mark.parametrize("text, position, expected", [
    ("", 0, "a query"),
    ("   ", 0, "a query"),
    ("tau_m > 5", 0, "a field name"),
    ("params. > 5", 0, "a field name"),
    ("label", 5, "an operator"),
    ("label ==", 7, "a value"),
    ("label = ", 8, "a value"),
    ("label = and", 8, "a value"),
    ("label = 'open", 8, "a closing '"),
    ("(label = a", 10, "')'"),
    ("label = a)", 9, "'and', 'or'"),
    ("label = a label = b", 10, "'and', 'or'"),
    ("label = a and", 13, "a field name"),
    ("duration ~ 5", 9, "an operator other than '~'"),
    ("duration = fast", 11, "a number"),
    ("timestamp > yesterday", 12, "a timestamp"),
    ("timestamp > '2024-13-01'", 12, "a timestamp"),
    ("tags = x", 5, "'has' or 'exists'"),
    ("label has x", 6, "'has' after tags only"),
    ("params.flag < true", 14, "a number or text"),
    ("user in ann", 8, "'(' after in"),
    ("user in (a b)", 11, "',' or ')'"),
    ("label = a # b", 10, "a field, an operator"),
    ("params.x > 1e999", 11, "a number in range"),
])
def test_errors_name_the_position_and_what_was_expected(text, position, expected):
    with pytest.raises(QueryError) as info:
        parse(text)
    assert info.value.position == position, str(info.value)
    assert expected in info.value.expected, str(info.value)
    assert str(info.value).startswith(f"at position {position}: expected")


def test_bounds():
    parse("label = a" + " and label = a" * (query_parser.MAX_TERMS - 1))
    with pytest.raises(QueryError, match="at most 50 terms"):
        parse("label = a" + " and label = a" * query_parser.MAX_TERMS)
    parse("(" * 19 + "label = a" + ")" * 19)
    with pytest.raises(QueryError, match="at most 20 levels"):
        parse("not " * 25 + "label = a")
    with pytest.raises(QueryError, match="at most 2000 characters"):
        parse("label = '" + "x" * 2000 + "'")
    with pytest.raises(QueryError, match="at most 100 values"):
        parse("user in (" + ", ".join(str(i) for i in range(101)) + ")")
    with pytest.raises(QueryError, match="NUL"):
        parse("label = 'a\x00'")


def record(**fields) -> dict:
    return {"label": "r1", "timestamp": "2024-01-02 10:00:00", **fields}


def json_params(text: str) -> dict:
    return {"type": "JSONParameterSet", "content": text}


@pytest.mark.parametrize("fields, text, expected", [
    ({"parameters": json_params('{"tau_m": 10}')}, "params.tau_m = 10", True),
    ({"parameters": json_params('{"tau_m": 10}')}, "params.tau_m = 10.0", True),
    ({"parameters": json_params('{"tau_m": 10}')}, "params.tau_m = '10'", False),
    ({"parameters": json_params('{"tau_m": "10"}')}, "params.tau_m > 5", False),
    ({"parameters": json_params('{"tau_m": "10"}')}, "params.tau_m = '10'", True),
    ({"parameters": json_params('{"a": {"b": 2}}')}, "params.a.b >= 2", True),
    ({"parameters": {"type": "SimpleParameterSet", "content": "tau = 3\nd = 'u'"}},
     "params.tau < 4 and params.d = u", True),
    ({"parameters": {"type": "ConfigParserParameterSet", "content": "[s]\nTau = 3"}},
     "params.s.tau = 3", True),
    ({"parameters": {"type": "YAMLParameterSet", "content": "a:\n  b: x"}},
     "params.a.b = x", True),
    ({"parameters": json_params("{broken")}, "params.a exists", False),
    ({"parameters": json_params("{broken")}, "not params.a exists", True),
    ({"parameters": json_params('{"f": true}')}, "params.f = true", True),
    ({"parameters": json_params('{"f": true}')}, "params.f = 1", False),
    ({"parameters": json_params('{"n": null}')}, "params.n exists", False),
    ({}, "params.x != 1", False),  # missing: every comparison is false
    ({}, "not params.x = 1", True),
    ({}, "duration < 5", False),
    ({}, "not duration < 5", True),
    ({"duration": 3}, "duration < 5 and duration exists", True),
    ({"duration": True}, "duration exists", False),
    ({"reason": "Calibrate the PROBE"}, "reason ~ probe", True),
    ({"reason": "ÉTÉ"}, "reason ~ 'été'", False),  # ASCII case only, as SQL's lower()
    ({"reason": "ÉTÉ"}, "reason ~ 'ÉT'", True),
    ({"reason": "b"}, "reason > a and reason < c", True),
    ({"reason": ""}, "reason exists", False),
    ({}, "reason = ''", True),  # text fields are "" when absent, as indexed
    ({"executable": {"name": "NEST"}}, "executable = NEST", True),
    ({"tags": ["a", "b"]}, "tags has b and not tags has c", True),
    ({"tags": []}, "tags exists", False),
    ({"repeats": "r0"}, "repeats = r0", True),
    ({"repeats": 3}, "repeats exists", False),
    ({"timestamp": "2024-01-02 12:00:00+02:00"}, "timestamp = '2024-01-02 10:00'", True),
    ({"user": "bob"}, "user in (ann, bob)", True),
])
def test_the_reference_evaluator(fields, text, expected):
    assert matches(parse(text), record(**fields)) is expected


@pytest.mark.parametrize("text, kind", [
    ("probe", "text"), ("tau_m", "text"), ("run 42", "text"), ("label ~ run", "query"),
    ("params.x > 1", "query"), ("duration < soon", "problem"), ("(nothing", "problem"),
    ("", "empty"),
])
def test_the_search_box_rule(text, kind):
    search = interpret_search(text)
    got = ("empty" if search.where is None and search.text is None
           else "query" if search.where is not None
           else "problem" if search.problem else "text")
    assert got == kind
