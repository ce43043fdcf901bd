"""``GET /<project>/?q=...`` and ``expand=records``: the query language over HTTP."""

from __future__ import annotations

import json
import tracemalloc
from urllib.parse import quote

import pytest
import transaction
from conftest import basic

from pyramid_sumatra.records import build_stored_record
from pyramid_sumatra.services import search as search_service

JSON = {"Accept": "application/json"}
NDJSON = {"Accept": "application/x-ndjson"}
P = "QP"


def doc(i: int, **fields) -> dict:
    return {"label": f"run{i:04d}", "timestamp": f"2024-01-{1 + i % 28:02d} 10:00:00",
            "reason": "sweep", "user": "testuser", "duration": float(i % 90),
            "tags": ["sweep"] + (["odd"] if i % 2 else []),
            "parameters": {"type": "SimpleParameterSet",
                           "content": f"tau_m = {i % 30}\ndistr = "
                                      f"{'uniform' if i % 3 else 'normal'!r}\n"},
            **fields}


def seed(storage, count: int, project: str = P, start: int = 0) -> list[dict]:
    from pyramid_sumatra.storage.types import ProjectInfo

    docs = [doc(i) for i in range(start, start + count)]
    with transaction.manager:
        if storage.get_project(project) is None:
            storage.put_project(ProjectInfo(id=project))
            storage.set_grant(project, "testuser", "admin")
        for d in docs:
            storage.put_record(build_stored_record(project, d), create=True)
    return docs


@pytest.fixture
def sweep(storage, testapp):
    return seed(storage, 60)


def get(testapp, query: str, status: int = 200, headers=None):
    return testapp.get(f"/{P}/?{query}", headers={**JSON, **basic(), **(headers or {})},
                       status=status)


def labels_of(body: dict) -> list[str]:
    return [u.rstrip("/").rsplit("/", 1)[1] for u in body["records"]]


def expected(docs, keep) -> list[str]:
    return sorted((d["label"] for d in docs if keep(d)),
                  key=lambda label: (next(x["timestamp"] for x in docs if x["label"] == label),
                                     label), reverse=True)


def params(d) -> tuple[int, str]:
    i = int(d["label"][3:])
    return i % 30, "uniform" if i % 3 else "normal"


def test_q_selects_records_by_parameters_and_fields(testapp, sweep):
    q = quote("params.tau_m >= 5 and params.tau_m <= 20 and params.distr = uniform "
              "and duration < 60")
    body = get(testapp, f"q={q}").json
    want = expected(sweep, lambda d: 5 <= params(d)[0] <= 20 and params(d)[1] == "uniform"
                    and d["duration"] < 60)
    assert labels_of(body) == want and 0 < len(want) < 60


def test_queries_and_plots_read_the_stored_parameters_never_the_bodys(testapp, sweep,
                                                                     monkeypatch):
    from pyramid_sumatra import parameters

    def refuse(*_args, **_kwargs):
        raise AssertionError("a record's parameters were parsed again")

    monkeypatch.setattr(parameters, "parse_parameters", refuse)  # the records are stored
    want = expected(sweep, lambda d: params(d)[0] >= 25 and params(d)[1] == "uniform")
    for text in ("params.tau_m >= 25 and params.distr = uniform",  # SQL decides
                 "params.tau_m >= 25 and params.distr = uniform and not reason ~ 'é'"):
        assert labels_of(get(testapp, f"q={quote(text)}").json) == want, text
    plot = testapp.get(f"/{P}/@@plotdata?q={quote('params.tau_m >= 25')}",
                       headers={**JSON, **basic()}).json
    assert sorted(r["parameters"]["tau_m"] for r in plot["records"]) == sorted(
        params(d)[0] for d in sweep if params(d)[0] >= 25)
    assert plot["parameters"] == {"distr": "categorical", "tau_m": "numeric"}


def test_the_tag_listing_honours_q(testapp, sweep):
    q = quote("params.tau_m >= 10 and params.distr = uniform")
    want = expected(sweep, lambda d: params(d)[0] >= 10 and params(d)[1] == "uniform"
                    and "odd" in d["tags"])
    body = testapp.get(f"/{P}/tag/odd/?q={q}", headers={**JSON, **basic()}).json
    assert labels_of(body) == want and 0 < len(want) < 30  # not every odd record
    bad = testapp.get(f"/{P}/tag/odd/?q=params.tau_m%20%3E", headers={**JSON, **basic()},
                      status=400).json
    assert bad["error"] == "invalid q"


def test_the_tag_page_honours_q(testapp, sweep):
    q = quote("params.tau_m >= 10 and params.distr = uniform")
    want = expected(sweep, lambda d: params(d)[0] >= 10 and params(d)[1] == "uniform"
                    and "odd" in d["tags"])
    html = testapp.get(f"/{P}/tag/odd/?q={q}", headers={"Accept": "text/html", **basic()}).text
    shown = [d["label"] for d in sweep if f">{d['label']}<" in html]
    assert sorted(shown) == sorted(want) and want


def test_q_combines_with_tags_and_pages_with_a_cursor(testapp, sweep):
    q = quote("params.distr = normal")
    want = expected(sweep, lambda d: params(d)[1] == "normal" and "odd" in d["tags"])
    first = get(testapp, f"q={q}&tags=odd&limit=3").json
    got = labels_of(first)
    url = first.get("next")
    while url:
        page = testapp.get(url, headers={**JSON, **basic()}).json
        got += labels_of(page)
        url = page.get("next")
    assert got == want and len(want) > 3


@pytest.mark.parametrize("q, position", [
    ("params.tau_m >", 14), ("nonsense = 1", 0), ("label = 'x", 8), ("(label = x", 10),
    ("duration < abc", 11), ("tags = x", 5), ("label = x y", 10),
])
def test_a_bad_query_is_a_400_naming_the_position(testapp, sweep, q, position):
    res = get(testapp, f"q={quote(q)}", status=400)
    assert res.json["error"] == "invalid q"
    assert f"at position {position}: expected" in res.json["detail"]


@pytest.mark.parametrize("q", ["label = 1 and " * 60 + "label = 1", "(" * 40 + "label=1",
                               "label = " + "x" * 3000, "label in (" + ",".join("1" * 101) + ")",
                               "label = '\x00'", "label = '\udc80'"])
def test_oversized_or_unstorable_queries_are_400(testapp, sweep, q):
    res = get(testapp, f"q={quote(q, errors='surrogatepass')}", status=400)
    # NUL and undecodable bytes: the app refuses the URL before any view
    assert res.json["error"] in ("invalid q", "invalid URL")


@pytest.mark.parametrize("value", ["'; DROP TABLE records; --", "%", "_", "\\", "a'b",
                                   "\\'; --", "%%__"])
def test_hostile_strings_match_nothing_and_break_nothing(testapp, sweep, value):
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    for q in (f"reason = '{escaped}'", f"reason ~ '{escaped}'", f"tags has '{escaped}'",
              f"params.distr = '{escaped}'"):
        assert labels_of(get(testapp, f"q={quote(q)}").json) == [], q
    assert len(labels_of(get(testapp, "q=" + quote("reason ~ 'WEE'")).json)) == 60


def test_expand_records_gives_whole_documents_with_project_id(testapp, sweep, storage):
    body = get(testapp, "expand=records&q=" + quote("params.tau_m = 7")).json
    want = expected(sweep, lambda d: params(d)[0] == 7)
    assert [r["label"] for r in body["records"]] == want
    assert body["count"] == len(want) and body["next"] is None
    first = body["records"][0]
    with transaction.manager:
        stored = json.loads(storage.get_record(P, first["label"]).body)
    assert first == {**stored, "project_id": P}


def test_expand_records_pages_with_a_bounded_limit(testapp, sweep):
    first = get(testapp, "expand=records&limit=25").json
    assert first["count"] == 25 and first["next"]
    second = testapp.get(first["next"], headers={**JSON, **basic()}).json
    third = testapp.get(second["next"], headers={**JSON, **basic()}).json
    assert third["next"] is None
    got = [r["label"] for page in (first, second, third) for r in page["records"]]
    assert got == expected(sweep, lambda d: True)
    for bad in ("limit=0", "limit=1001", "limit=x"):
        assert get(testapp, f"expand=records&{bad}", status=400).json["error"] == \
            "invalid limit"
    assert get(testapp, "expand=everything", status=400).json["error"] == "invalid expand"
    assert get(testapp, "expand=records&cursor=nonsense", status=400).json["error"] == \
        "invalid cursor"


def test_ndjson_streams_every_selected_record(testapp, sweep):
    res = get(testapp, "q=" + quote("params.distr = uniform"), headers=NDJSON)
    assert res.content_type == "application/x-ndjson"
    lines = [json.loads(line) for line in res.body.splitlines()]
    assert [d["label"] for d in lines] == expected(sweep, lambda d: params(d)[1] == "uniform")
    assert all(d["project_id"] == P for d in lines)
    assert get(testapp, "q=" + quote("params.x >"), headers=NDJSON, status=400).json[
        "error"] == "invalid q"
    capped = get(testapp, "limit=7", headers=NDJSON)
    assert len(capped.body.splitlines()) == 7


def test_a_private_projects_records_never_leak(testapp, sweep):
    for query in ("q=" + quote("label ~ run"), "expand=records",
                  "q=label%20~%20run&expand=records"):
        res = testapp.get(f"/{P}/?{query}", headers=JSON, expect_errors=True)
        assert res.status_int in (401, 403, 404) and b"run00" not in res.body
        res = testapp.get(f"/{P}/?{query}", headers={**NDJSON, **basic("nobody", "x")},
                          expect_errors=True)
        assert res.status_int in (401, 403, 404) and b"run00" not in res.body
    res = testapp.get(f"/{P}/?q=label", headers=NDJSON, expect_errors=True)
    assert res.status_int in (401, 403, 404) and b"run00" not in res.body


def _stream_peak(app, project: str, query: str = "") -> int:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/{project}/", "QUERY_STRING": query,
               "HTTP_ACCEPT": "application/x-ndjson", "SERVER_NAME": "x", "SERVER_PORT": "80",
               "wsgi.url_scheme": "http", "wsgi.input": None, "wsgi.errors": None,
               **{f"HTTP_{k.upper()}": v for k, v in basic().items()}}
    import io
    import sys

    environ["wsgi.input"], environ["wsgi.errors"] = io.BytesIO(), sys.stderr
    status = []
    tracemalloc.start()
    try:
        result = app(environ, lambda s, h, e=None: status.append(s))
        lines = 0
        for chunk in result:
            lines += chunk.count(b"\n")
        getattr(result, "close", lambda: None)()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status[0].startswith("200") and lines > 0
    return peak


def test_ndjson_memory_stays_flat(storage, testapp, monkeypatch):
    monkeypatch.setattr(search_service, "STREAM_PAGE", 100)
    seed(storage, 5000, "Large")
    app = testapp.app
    _stream_peak(app, "Large", "limit=500")  # warm caches (statements, a backend's index)
    # The same project (a filesystem backend reads its whole index per query either way):
    # 500 records streamed, then 5,000.
    small = _stream_peak(app, "Large", "limit=500")
    large = _stream_peak(app, "Large")
    # Ten times the records, nowhere near ten times the memory (one page at a time).
    assert large < small * 2, (small, large)


# -- the record table's search box and the plot data ------------------------------------------


def test_the_search_box_takes_a_query_or_plain_text(testapp, sweep):
    from bs4 import BeautifulSoup

    def table_labels(q: str) -> list[str]:
        page = testapp.get(f"/{P}/?limit=200&q={quote(q)}",
                           headers={"Accept": "text/html", **basic()})
        soup = BeautifulSoup(page.text, "html.parser")
        return soup, [a.text.strip() for a in soup.select("td a[href$='/']")
                      if a.text.strip().startswith("run")]

    _, got = table_labels("params.tau_m = 7 and params.distr = uniform")
    assert got == expected(sweep, lambda d: params(d) == (7, "uniform")) and got
    soup, got = table_labels("run001")  # plain text: a substring of the label
    assert got == expected(sweep, lambda d: "run001" in d["label"]) and got
    assert soup.select_one("#query-problem") is None
    soup, got = table_labels("duration < soon")  # looks like a query, is not: text, and why
    assert got == [] and "expected a number" in soup.select_one("#query-problem").text


def test_plotdata_q_takes_the_query_language(testapp, sweep):
    body = testapp.get(f"/{P}/@@plotdata?q=" + quote("params.tau_m < 3"),
                       headers={**JSON, **basic()}).json
    assert [r["label"] for r in body["records"]] == expected(sweep, lambda d: params(d)[0] < 3)
    text = testapp.get(f"/{P}/@@plotdata?q=run0001", headers={**JSON, **basic()}).json
    assert [r["label"] for r in text["records"]] == ["run0001"]


def test_a_costly_query_gives_short_pages_or_a_400(testapp, sweep, monkeypatch):
    from pyramid_sumatra.query import search as query_search

    monkeypatch.setattr(query_search, "BUDGET", 0.0)  # every chunk overruns
    monkeypatch.setattr(query_search, "FIRST_CHUNK", 4)
    # SQL decides parameters; a non-ASCII `~` needle is still Python's (no record has it).
    q = quote("params.tau_m < 10 or params.distr = normal or reason ~ 'é'")
    want = expected(sweep, lambda d: params(d)[0] < 10 or params(d)[1] == "normal")
    got, url, pages = [], f"/{P}/?q={q}&expand=records&limit=1000", 0
    while url:
        page = testapp.get(url, headers={**JSON, **basic()}).json
        got += [r["label"] for r in page["records"]]
        url, pages = page["next"], pages + 1
    assert got == want and pages > 3  # short pages, each with a cursor to go on from
    res = get(testapp, f"q={q}", status=400)  # every label at once: no page to cut short
    assert res.json["error"] == "invalid q" and "more than 0 s" in res.json["detail"]
    lines = get(testapp, f"q={q}", headers=NDJSON).body.splitlines()
    assert [json.loads(line)["label"] for line in lines] == want
