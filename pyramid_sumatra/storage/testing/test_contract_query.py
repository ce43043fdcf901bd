"""Contract: the query language selects exactly what the reference evaluator accepts.

Queries are generated (Hypothesis) as trees, rendered to text and parsed, then run
through ``Storage.search_records`` (the backend's ``sumatra_search_records`` hook, or
the app's fallback over ``sumatra_query_records``) over generated records in every
parameter format; the labels must equal those ``query.matches`` accepts, in order,
whole and page by page.
"""

from __future__ import annotations

import json
import random
import uuid

import pytest
import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyramid_sumatra.query import matches, parse
from pyramid_sumatra.query.search import document
from pyramid_sumatra.records import build_stored_record
from pyramid_sumatra.storage.testing.support import put
from pyramid_sumatra.storage.types import ProjectInfo, RecordQuery

HOSTILE = ["'; DROP TABLE records; --", "50%", "_", "a_b", "\\", "\\'", '"', "%_\\",
           "O'Brien", "é", "Élan", "ÉLAN", "ß", "", " ", "uniform", "normal", "Uniform"]
TEXTS = ["uniform", "normal", "a", "Ab", "probe failed", "rerun", "x.py", "v1.2", *HOSTILE]
NUMBERS = [-1, 0, 1, 2.5, 5, 10, 10.0, 20, 60, 1000, 1e9, -0.5]
TAGS = ["calib", "v1", "v2", "50%", "'; DROP TABLE record_tags; --", "é"]
NAMES = ["tau_m", "distr", "solver.tol", "n", "flag", "Tau_M"]
TIMES = ["2024-01-01 09:00:00", "2024-01-02 00:00:00", "2024-01-03 09:00:00",
         "2024-06-01 12:30:00+02:00", "2025-01-01 00:00:00"]


def _param_value(rng: random.Random):
    # Beyond JSON's scalars: values that exist but compare with nothing (an infinity, an
    # empty section, text holding NUL), integers past a float's precision, a number as text.
    return rng.choice([*NUMBERS, *TEXTS[:8], True, False, None, [1, 2], float("inf"), {},
                       2**70, 2**53 + 1, "5", "nul\x00"])


def _parameters(rng: random.Random):
    values = {name: _param_value(rng) for name in rng.sample(["tau_m", "distr", "n", "flag"],
                                                              rng.randint(0, 4))}
    if rng.random() < 0.3:
        values["solver"] = {"tol": rng.choice(NUMBERS)}
    kind = rng.choice(["json", "simple", "yaml", "ini", "dict", "garbage", "none"])
    if kind == "json":
        return {"type": "JSONParameterSet", "content": json.dumps(values)}
    if kind == "yaml":
        return {"type": "YAMLParameterSet", "content": json.dumps(values)}  # JSON is YAML
    if kind == "dict":
        return {"type": "NTParameterSet", "content": repr(values)}
    flat = {k: v for k, v in values.items() if not isinstance(v, dict | list) and v is not None}
    if kind == "simple":
        return {"type": "SimpleParameterSet",
                "content": "\n".join(f"{k} = {v!r}" for k, v in flat.items())}
    if kind == "ini":
        return {"type": "ConfigParserParameterSet",
                "content": "[sim]\n" + "\n".join(f"{k} = {v!r}" for k, v in flat.items())}
    if kind == "garbage":
        return {"type": "JSONParameterSet", "content": "{not json"}
    return None


def generated_document(rng: random.Random, label: str) -> dict:
    doc: dict = {"label": label, "timestamp": rng.choice(TIMES)}
    for name in ("reason", "outcome", "user", "main_file", "version"):
        if rng.random() < 0.7:
            doc[name] = rng.choice(TEXTS)
    if rng.random() < 0.6:
        doc["executable"] = {"name": rng.choice(["Python", "python", "NEST", "50%"]),
                             "version": "3"}
    duration = rng.choice([None, "absent", *NUMBERS[:8], 3])
    if duration != "absent":
        doc["duration"] = duration
    repeats = rng.choice(["absent", None, "alpha", "b%", 3])
    if repeats != "absent":
        doc["repeats"] = repeats
    doc["tags"] = rng.sample(TAGS, rng.randint(0, 3))
    parameters = _parameters(rng)
    if parameters is not None:
        doc["parameters"] = parameters
    return doc


def corpus(project: str, seed: int, count: int):
    rng = random.Random(seed)
    return [build_stored_record(project, generated_document(rng, f"r{i:03d}"))
            for i in range(count)]


# -- queries as text, generated from their parts ---------------------------------------------


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _quote(value)


text_literals = st.sampled_from(TEXTS).map(_quote) | st.sampled_from(NUMBERS).map(_literal)
any_literals = st.sampled_from([*TEXTS, *NUMBERS, True, False]).map(_literal)
ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])


@st.composite
def terms(draw) -> str:
    kind = draw(st.sampled_from(["text", "duration", "timestamp", "tags", "params", "repeats",
                                 "exists", "in"]))
    if kind == "text":
        field = draw(st.sampled_from(["label", "reason", "outcome", "user", "main_file",
                                      "version", "executable"]))
        op = draw(st.sampled_from(["=", "!=", "<", ">=", "~"]))
        value = draw(text_literals) if field != "label" else _quote(draw(st.sampled_from(
            ["r001", "r010", "r05", "R0"])))
        return f"{field} {op} {value}"
    if kind == "duration":
        return f"duration {draw(ops)} {_literal(draw(st.sampled_from(NUMBERS)))}"
    if kind == "timestamp":
        when = draw(st.sampled_from(["2024-01-02", "'2024-01-03 09:00:00'", "'2024-06-01 10:30'"]))
        return f"timestamp {draw(ops)} {when}"
    if kind == "tags":
        return f"tags has {_quote(draw(st.sampled_from(TAGS)))}"
    if kind == "repeats":
        return f"repeats {draw(st.sampled_from(['=', '!=', '~']))} " \
               f"{_quote(draw(st.sampled_from(['alpha', 'b%', 'A', '3'])))}"
    if kind == "exists":
        field = draw(st.sampled_from(["reason", "duration", "repeats", "tags", "executable",
                                      *(f"params.{n}" for n in NAMES)]))
        return f"{field} exists"
    if kind == "in":
        field = draw(st.sampled_from(["user", "params.distr", "params.tau_m", "outcome"]))
        values = draw(st.lists(any_literals if field.startswith("params") else text_literals,
                               min_size=1, max_size=3))
        return f"{field} in ({', '.join(values)})"
    name = draw(st.sampled_from(NAMES))
    op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "~"]))
    value = draw(any_literals)
    if value in ("true", "false") and op not in ("=", "!=", "~"):
        op = "!="  # booleans are not ordered (a 400)
    return f"params.{name} {op} {value}"


queries = st.recursive(
    terms(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or", "AND"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda q: f"not {q}")),
    max_leaves=6)

ORDERS = ["-timestamp", "label", "-duration", "user"]


def expected(records, text: str, order: str) -> list[str]:
    where = parse(text)
    chosen = [r for r in records if matches(where, document(r))]
    field, descending = order.lstrip("-"), order.startswith("-")

    def key(r):
        value = getattr(r, field)
        return (-1.0 if value is None else value) if field == "duration" else value

    return [r.label for r in sorted(chosen, key=lambda r: (key(r), r.label),
                                    reverse=descending)]


def search(store, project: str, text: str, **kwargs):
    with transaction.manager:
        return store.search_records(project, RecordQuery(**kwargs), parse(text))


def all_pages(store, project: str, text: str, limit: int, order: str) -> list[str]:
    found, cursor = [], None
    for _ in range(100):
        page = search(store, project, text, limit=limit, cursor=cursor, order=order)
        assert len(page.records) <= limit
        found += [r.label for r in page.records]
        cursor = page.next_cursor
        if not cursor:
            return found
    raise AssertionError("more pages than records")


@pytest.fixture
def generated(store, project):
    records = corpus(project, seed=19, count=60)
    put(store, *records)
    return records


_SETTINGS = settings(max_examples=120, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])


@_SETTINGS
@given(text=queries, order=st.sampled_from(ORDERS))
def test_generated_queries_select_what_the_reference_evaluator_accepts(
        store, project, generated, text, order):
    want = expected(generated, text, order)
    page = search(store, project, text, order=order)
    assert [r.label for r in page.records] == want, text
    assert page.total in (None, len(want))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=queries, order=st.sampled_from(ORDERS), limit=st.sampled_from([1, 4, 25]))
def test_generated_queries_page_by_page(store, project, generated, text, order, limit):
    assert all_pages(store, project, text, limit, order) == expected(generated, text, order)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), texts=st.lists(queries, min_size=1, max_size=5))
def test_generated_records_too(store, seed, texts):
    project = "G" + uuid.uuid4().hex[:8]
    with transaction.manager:
        store.put_project(ProjectInfo(id=project))
    records = corpus(project, seed=seed, count=12)
    put(store, *records)
    for text in texts:
        assert [r.label for r in search(store, project, text).records] == \
            expected(records, text, "-timestamp"), text


def test_query_combines_with_the_plain_filters(store, project, generated):
    text = "params.tau_m exists or duration > 1"
    want = [label for label in expected(generated, text, "-timestamp")
            if "calib" in next(r.tags for r in generated if r.label == label)]
    page = search(store, project, text, tags=["calib"])
    assert [r.label for r in page.records] == want
    assert want, "the corpus has records with the tag and the parameter"


def test_bodies_and_labels_only_as_asked(store, project, generated):
    text = "params.distr = uniform"
    want = expected(generated, text, "-timestamp")
    assert want
    without = search(store, project, text)
    assert all(r.body is None for r in without.records)
    bodies = search(store, project, text, with_body=True).records
    assert [json.loads(r.body)["label"] for r in bodies] == want
    assert search(store, project, text, labels_only=True, limit=3).all_labels() == want[:3]


@pytest.mark.parametrize("text", [f"reason = {_quote(s)}" for s in HOSTILE]
                         + [f"user ~ {_quote(s)}" for s in HOSTILE]
                         + [f"tags has {_quote(s)}" for s in HOSTILE])
def test_hostile_strings_match_as_text(store, project, generated, text):
    page = search(store, project, text)
    assert [r.label for r in page.records] == expected(generated, text, "-timestamp")


def test_a_malformed_cursor_is_a_value_error(store, project, generated):
    for cursor in ("nonsense", "q" + "A" * 40, "qW251bGwsIDAsIDBd"):
        with pytest.raises(ValueError):
            search(store, project, "params.n exists", cursor=cursor, limit=2)


def test_pages_cut_short_by_the_time_budget_still_add_up(store, project, generated, monkeypatch):
    from pyramid_sumatra.query import search as query_search

    monkeypatch.setattr(query_search, "BUDGET", 0.0)  # a backend's own evaluation: its pages
    monkeypatch.setattr(query_search, "FIRST_CHUNK", 4)
    text = "params.tau_m exists or params.distr = uniform"
    assert all_pages(store, project, text, 10, "-timestamp") == expected(
        generated, text, "-timestamp")


def test_stored_parameters_are_the_bodys_parameters(store, project, generated):
    """A backend that keeps ``StoredRecord.parameters`` keeps exactly what the body's
    parameters flatten to (``parameters.record_parameters``); None means "not kept"."""
    from pyramid_sumatra.parameters import record_parameters

    with transaction.manager:
        listed = store.query_records(project, RecordQuery(with_parameters=True,
                                                          with_body=True)).records
        single = [store.get_record(project, r.label) for r in generated[:10]]
    assert len(listed) == len(generated)
    for got in [*listed, *single]:
        if got.parameters is not None:
            assert got.parameters == record_parameters(json.loads(got.body)), got.label
    kept = [r for r in listed if r.parameters is not None]
    assert not kept or any(r.parameters for r in kept), "the corpus has parameters"


def test_parameters_without_bodies_when_asked(store, project, generated):
    """``with_parameters`` without ``with_body``: parameters if the backend keeps them,
    the body left out (or, for a backend that ignores the flag, None as asked)."""
    from pyramid_sumatra.parameters import record_parameters

    want = {r.label: record_parameters(json.loads(r.body)) for r in generated}
    with transaction.manager:
        page = store.query_records(project, RecordQuery(with_parameters=True, limit=20))
    assert len(page.records) == 20
    for got in page.records:
        assert got.body is None
        assert got.parameters is None or got.parameters == want[got.label]
