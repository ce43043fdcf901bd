"""Fuzzing: schemathesis against the served OpenAPI description, and Hypothesis records.

schemathesis generates requests for every operation of ``/_api/openapi.json`` and
sends them to the app served by waitress on loopback (per backend): no 5xx, and
status, content type, headers and bodies must conform to the description.
Hypothesis sends records a Sumatra client could send (``json.dumps`` of anything:
unicode incl. lone surrogates, huge numbers, nesting, old formats): each is
stored and served back exactly, or refused with a 4xx naming the field, storing
nothing; never a 5xx.
"""

from __future__ import annotations

import itertools
import json
import urllib.request

import pytest
import schemathesis
from conftest import DATA, basic, served
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import checks

SCHEMATHESIS_EXAMPLES = 8  # per operation and strategy; ~40 operations x 3 strategies
RECORD_EXAMPLES = 120

CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance]
FUZZ_SETTINGS = dict(deadline=None, database=None, derandomize=True,
                     suppress_health_check=list(HealthCheck),
                     phases=[Phase.explicit, Phase.generate])


# -- schemathesis over HTTP ------------------------------------------------------------


def test_schemathesis_against_the_served_description(live_server, capsys):
    with urllib.request.urlopen(live_server.url + "_api/openapi.json") as res:
        description = json.load(res)
    schema = schemathesis.openapi.from_dict(description)
    base_url = live_server.url.rstrip("/")
    with urllib.request.urlopen(urllib.request.Request(
            live_server.url + "TestProject/?format=json", headers=basic())) as res:
        label = json.load(res)["records"][0].rstrip("/").rsplit("/", 1)[1]
    existing = {"project": "TestProject", "label": label, "tag": "foobar"}

    calls = 0
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        names = {p.name for p in operation.path_parameters}
        strategies = [operation.as_strategy()]
        if names:
            fixed = {k: v for k, v in existing.items() if k in names}
            strategies.append(operation.as_strategy(path_parameters=fixed))
            strategies.append(operation.as_strategy(
                path_parameters={**fixed, "project": "TestProject2"}
                if "project" in names else fixed))

        @given(case=st.one_of(strategies))
        @settings(max_examples=SCHEMATHESIS_EXAMPLES * len(strategies), **FUZZ_SETTINGS)
        def run(case):
            nonlocal calls
            calls += 1
            case.call_and_validate(base_url=base_url, headers=basic(), checks=CHECKS,
                                   timeout=10)

        run()
    with capsys.disabled():
        print(f"\nschemathesis: {calls} requests over {operations} operations")
    assert operations >= 30 and calls >= operations * SCHEMATHESIS_EXAMPLES


# -- Hypothesis records in process ----------------------------------------------------------

RECORD_TYPE = "application/vnd.sumatra.record-v4+json"
EXAMPLES = [json.loads(p.read_text()) for p in sorted(DATA.glob("example_0.*.json"))]

floats = st.floats(allow_nan=False, allow_infinity=False)
json_scalars = (st.none() | st.booleans()
                | st.integers(min_value=-(2**256), max_value=2**256)
                | floats
                | st.text(max_size=30)
                | st.text(st.characters(exclude_categories=()), max_size=8))  # lone surrogates too
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)
timestamps = st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")) | st.sampled_from(
    ["2024-01-31 10:15:00+02:00", "2024-01-31T10:15:00Z", "2024-02-30 10:00:00", "yesterday"])
texts = st.text(max_size=40)
#: Fields as Sumatra writes them, with the occasional wrong type.
known_fields = {
    "reason": texts | st.none() | json_values,
    "outcome": texts | st.none(),
    "user": texts,
    "main_file": texts,
    "version": texts,
    "duration": floats | st.integers() | st.none()
    | json_values,
    "tags": st.lists(st.text(min_size=1, max_size=20), max_size=6) | texts | json_values,
    "executable": st.fixed_dictionaries({"name": texts, "path": texts, "version": texts,
                                         "options": texts}) | json_values,
    "parameters": st.fixed_dictionaries({"content": texts, "type": texts}),
    "output_data": st.lists(st.fixed_dictionaries(
        {"path": texts, "digest": texts, "metadata": json_values},
        optional={"creation": texts | st.none()}), max_size=3) | json_values,
    "input_data": st.lists(st.fixed_dictionaries({"path": texts, "digest": texts}),
                           max_size=3),
    "stdout_stderr": texts,
    "repeats": st.none() | texts,
    "platforms": st.lists(st.dictionaries(texts, texts, max_size=5), max_size=2),
    "dependencies": json_values,
}
records = st.builds(
    lambda base, known, extra: {**base, **known, **extra},
    st.sampled_from([{}] + EXAMPLES),
    st.fixed_dictionaries({}, optional=known_fields),
    st.dictionaries(st.text(min_size=1, max_size=15), json_values, max_size=4),
)


def put_record(testapp, label: str, doc: dict):
    body = json.dumps(doc).encode()  # what Sumatra's encode_record sends (ASCII escapes)
    return testapp.put(f"/FuzzProject/{label}/", body, status="*", expect_errors=True,
                       headers={**basic(), "Content-Type": RECORD_TYPE, "Accept": RECORD_TYPE})


def test_any_record_round_trips_or_is_refused_naming_the_field(testapp, capsys):
    labels = (f"fuzz-{i}" for i in itertools.count())
    outcomes = {"stored": 0, "refused": 0}
    refused_fields: set[str] = set()

    @given(doc=records, timestamp=timestamps)
    @settings(max_examples=RECORD_EXAMPLES, **FUZZ_SETTINGS)
    def run(doc, timestamp):
        label = next(labels)
        doc = {**doc, "label": label, "timestamp": timestamp}
        doc.pop("project_id", None)
        res = put_record(testapp, label, doc)
        assert res.status_int < 500, res.text
        got = testapp.get(f"/FuzzProject/{label}/", headers={**basic(), "Accept": RECORD_TYPE},
                          status="*", expect_errors=True)
        if res.status_int == 201:
            outcomes["stored"] += 1
            assert got.status_int == 200
            assert json.loads(got.text) == served(doc, "FuzzProject")  # what was sent
        else:
            outcomes["refused"] += 1
            assert res.status_int == 400, res.text
            assert res.json["field"] in {*doc, "body"} or res.json["field"].split(".")[0] in doc
            assert res.json["field"].split(".")[0] in res.json["detail"] or \
                res.json["field"] == "body"
            refused_fields.add(res.json["field"])
            assert got.status_int == 404  # nothing stored

    run()
    with capsys.disabled():
        print(f"\nhypothesis records: {outcomes}, refused fields {sorted(refused_fields)}")
    assert outcomes["stored"] > 10 and outcomes["refused"] > 10


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda d: d["label"])
def test_old_formats_round_trip_without_their_optional_keys(testapp, example):
    """Each example of tests/data, and the same with every optional key dropped in turn."""
    required = {"label", "timestamp"}
    for i, missing in enumerate([None, *sorted(set(example) - required)]):
        label = f"{example['label']}-{i}"
        doc = {k: v for k, v in example.items() if k != missing} | {"label": label}
        res = put_record(testapp, label, doc)
        assert res.status_int == 201, (missing, res.text)
        got = testapp.get(f"/FuzzProject/{label}/", headers={**basic(), "Accept": RECORD_TYPE})
        assert json.loads(got.text) == served(doc, "FuzzProject")


def test_large_floats_round_trip(testapp):
    doc = {"label": "floats", "timestamp": "2024-01-31 10:15:00", "duration": 1.5e300,
           "parameters": {"content": "x", "type": "dict"}, "big": [1e16, 6.680356835567469e250,
                                                                   -2.5e-300, 2**200]}
    assert put_record(testapp, "floats", doc).status_int == 201
    got = testapp.get("/FuzzProject/floats/", headers={**basic(), "Accept": RECORD_TYPE})
    assert json.loads(got.text) == served(doc, "FuzzProject")
    assert [type(x) for x in json.loads(got.text)["big"]] == [float, float, float, int]


def test_arbitrary_bodies_are_refused_with_400(testapp, capsys):
    seen = 0

    @given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
    @settings(max_examples=60, **FUZZ_SETTINGS)
    def run(body):
        nonlocal seen
        seen += 1
        res = testapp.put("/FuzzProject/junk/", body, status="*", expect_errors=True,
                          headers={**basic(), "Content-Type": RECORD_TYPE})
        assert res.status_int == 400, res.text
        assert {"error", "detail", "field"} <= set(res.json)
        testapp.get("/FuzzProject/junk/", headers=basic(), status=404)

    run()
    with capsys.disabled():
        print(f"\nhypothesis bodies: {seen}")


# -- what the fuzzers found (each was a 5xx) -------------------------------------------------

FOUND = [
    # A project PUT with "description": null (NOT NULL in storage → retried → 503).
    ("PUT", "/TestProject/", {"description": None}, 200, None),
    # Lone surrogates: \udcXX is how Python escapes undecodable file names (UTF-8 cannot
    # store them) → 500 on every backend.
    ("PUT", "/TestProject/s1/", {"label": "s1", "timestamp": "2024-01-31 10:15:00",
                                 "output_data": [{"path": "caf\udce9.txt"}]}, 400,
     "output_data.0.path"),
    ("PUT", "/TestProject/s2/", {"label": "s2", "timestamp": "2024-01-31 10:15:00",
                                 "k\ud800": 1}, 400, "k\ud800"),
    ("PUT", "/New/", {"name": "a\ud800"}, 400, None),
    # Bytes that are not UTF-8 in the path or query (a decoder error escaped as 500).
    ("GET", "/TestProject/tag/%ff/", None, 400, None),
    ("DELETE", "/TestProject/tag/%ED%A0%80/", None, 400, None),
    ("GET", "/TestProject/?tags=%ff", None, 400, None),
    # NUL in a tag filter (PostgreSQL refuses NUL in a query → 500).
    ("GET", "/TestProject/?tags=%00", None, 400, None),
    ("DELETE", "/TestProject/tag/%00/", None, 400, None),
]


@pytest.mark.parametrize("method,url,body,status,field", FOUND)
def test_what_fuzzing_found_is_now_a_4xx_or_works(testapp, method, url, body, status, field):
    headers = {**basic(), "Accept": "application/json", "Content-Type": "application/json"}
    res = testapp.request(url, method=method, headers=headers, status="*", expect_errors=True,
                          body=json.dumps(body).encode() if body is not None else b"")
    assert res.status_int == status, res.text
    if status == 400:
        assert {"error", "detail"} <= set(res.json)
    if field:
        assert res.json["field"] == field
    if method == "PUT" and status == 200:
        got = testapp.get(url, headers={**basic(), "Accept": "application/json"})
        assert got.json["description"] == "Private project"  # null kept it
