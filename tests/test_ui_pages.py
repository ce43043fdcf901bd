"""The HTML pages under WebTest: what each page shows, escaping, errors, speed."""

from __future__ import annotations

import csv
import io
import time

import pytest
import transaction
from conftest import BACKENDS, basic

from pyramid_sumatra.parameters import flatten, parse_parameters
from pyramid_sumatra.records import build_stored_record

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
def app_settings(tmp_path):
    """SQLite only: the pages reach storage through the facade the contract suite checks
    on every backend, so one backend keeps these tests quick."""
    settings, cleanup = BACKENDS["sqlite"](tmp_path)
    yield {**settings, "sumatra.initdb": "true", "sumatra.secret": "x" * 32}
    cleanup()


def login(app, username: str = "testuser", password: str = "abc123"):
    form = app.get("/_login", headers=HTML).forms["login-form"]
    form["username"], form["password"] = username, password
    return form.submit(status=303)


@pytest.fixture
def browser_app(testapp):
    """WebTest as a logged-in browser (session cookie, HTML Accept)."""
    login(testapp)
    return testapp


def put_record(storage, project_id: str, doc: dict) -> None:
    with transaction.manager:
        existing = storage.get_record(project_id, doc["label"])
        storage.put_record(build_stored_record(project_id, doc), create=existing is None)


def record_doc(label: str, **fields) -> dict:
    return {"label": label, "timestamp": "2024-01-31 10:15:00", "reason": "", "outcome": "",
            "tags": [], "user": "testuser", "main_file": "main.py", "version": "abc",
            "parameters": {"content": "{}", "type": "JSONParameterSet"}, **fields}


# -- Jinja2 and escaping ------------------------------------------------------------------


def test_autoescape_is_on_for_html_templates(wsgi_app):
    from pyramid_jinja2 import IJinja2Environment

    env = wsgi_app.registry.queryUtility(IJinja2Environment, name=".html")
    autoescape = env.autoescape
    assert autoescape("page.html") if callable(autoescape) else autoescape is True
    rendered = str(env.get_template("_macros.html").module.value("<script>alert(1)</script>"))
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered


XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


def test_every_record_field_is_escaped(browser_app, storage):
    doc = record_doc(
        "xss1", reason=XSS, outcome=XSS, tags=[XSS], main_file=XSS, version=XSS, user=XSS,
        stdout_stderr=XSS, diff=f"+{XSS}\n-{XSS}", script_arguments=XSS,
        parameters={"content": '{"<b>k</b>": "<i>v</i>"}', "type": "JSONParameterSet"},
        output_data=[{"path": XSS, "digest": XSS, "metadata": {"size": 1, XSS: XSS},
                      "creation": XSS}],
        input_data=[{"path": XSS, "digest": XSS, "metadata": {}, "creation": None}],
        dependencies=[{"name": XSS, "version": XSS, "path": XSS, "module": XSS, "diff": XSS,
                       "source": XSS}],
        platforms=[{"network_name": XSS, "ip_addr": XSS, "version": XSS}],
        executable={"name": XSS, "version": XSS, "path": XSS, "options": XSS},
        repository={"url": XSS, "type": XSS, "upstream": None},
        launch_mode={"type": XSS, "parameters": {XSS: XSS}},
        datastore={"type": XSS, "parameters": {}}, extra_field={XSS: [XSS]})
    put_record(storage, "TestProject", doc)
    pages = [browser_app.get("/TestProject/xss1/", headers=HTML),
             browser_app.get("/TestProject/", headers=HTML),
             browser_app.get("/TestProject/@@compare?labels=xss1,haggling", headers=HTML),
             browser_app.get("/TestProject/@@parameters", headers=HTML)]
    for page in pages:
        assert "<script>window" not in page.text
        assert "<img src=x" not in page.text
        assert "<b>k</b>" not in page.text and "<i>v</i>" not in page.text
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in pages[0].text
    assert "&lt;b&gt;k&lt;/b&gt;" in pages[0].text


# -- project list ------------------------------------------------------------------------


def test_anonymous_project_list_shows_public_projects_only(testapp):
    page = testapp.get("/", headers=HTML)
    assert "TestProject2" in page.text
    assert 'href="http://localhost/TestProject/"' not in page.text
    assert "public" in page.text
    assert "create-project" not in page.text  # anonymous cannot create
    assert "Log in" in page.text


def test_project_list_shows_counts_badges_and_create_form(browser_app):
    page = browser_app.get("/", headers=HTML)
    cards = page.html.select("li.project-card")
    by_name = {c.select_one(".project-name")["href"].split("/")[-2]: c for c in cards}
    assert set(by_name) == {"TestProject", "TestProject2"}
    assert "4 records" in by_name["TestProject"].text
    assert by_name["TestProject"].select_one(".badge").text == "private"
    assert by_name["TestProject2"].select_one(".badge").text == "public"
    assert page.forms["create-project"]
    assert "testuser" in page.html.select_one(".who").text


# -- project page: the record table -----------------------------------------------------


def labels_of(page) -> list[str]:
    return [a.text for a in page.html.select("table.records td.label a")]


def test_project_page_lists_records_newest_first_with_columns(browser_app):
    page = browser_app.get("/TestProject/", headers=HTML)
    assert labels_of(page) == ["haggling_repeat", "20111013-172514", "haggling",
                               "20111013-172503"]
    headers = [th.get("data-col") for th in page.html.select("table.records thead th")]
    assert headers[1:] == ["label", "timestamp", "reason", "outcome", "tags", "main_file",
                           "version", "executable", "duration", "user"]
    assert page.html.select_one("#record-count").text.split()[0] == "4"
    row = page.html.select("table.records tbody tr")[2]
    assert row.select_one('[data-col="tags"]').text.strip() == "foobar"
    assert row.select_one('[data-col="user"]').text.strip() == "testuser"
    assert row.select_one('[data-col="duration"]').text.strip().endswith(" s")


@pytest.mark.parametrize(("query", "expected"), [
    ("order=label", ["20111013-172503", "20111013-172514", "haggling", "haggling_repeat"]),
    ("order=-label", ["haggling_repeat", "haggling", "20111013-172514", "20111013-172503"]),
    ("tags=foobar", ["haggling"]),
    ("q=repeat", ["haggling_repeat"]),
    ("q=SMALLER", ["20111013-172514"]),
    ("user=testuser&main_file=main.py", ["haggling_repeat", "20111013-172514", "haggling",
                                          "20111013-172503"]),
    ("user=nobody", []),
    ("since=2011-10-13&until=2011-10-13", ["haggling_repeat", "20111013-172514", "haggling",
                                           "20111013-172503"]),
    ("until=2011-10-12", []),
    ("order=duration", None),  # any order the backend supports renders
    ("order=bogus", ["haggling_repeat", "20111013-172514", "haggling", "20111013-172503"]),
])
def test_project_page_filters_and_sorts(browser_app, query, expected):
    page = browser_app.get(f"/TestProject/?{query}", headers=HTML)
    if expected is not None:
        assert labels_of(page) == expected
    if expected == []:
        assert "No records match" in page.text


def test_tag_chips_toggle_the_filter(browser_app):
    page = browser_app.get("/TestProject/", headers=HTML)
    filtered = page.forms["filters"].submit("toggle", value="foobar", headers=HTML)
    assert labels_of(filtered) == ["haggling"]
    chip = filtered.html.select_one('.chips button[data-tag="foobar"]')
    assert "on" in chip["class"]
    assert filtered.forms["filters"]["tags"].value == "foobar"
    unfiltered = filtered.forms["filters"].submit("toggle", value="foobar", headers=HTML)
    assert len(labels_of(unfiltered)) == 4


def test_tagset_url_renders_the_table(browser_app):
    page = browser_app.get("/TestProject/tag/foobar/", headers=HTML)
    assert labels_of(page) == ["haggling"]


def test_cursor_pagination_walks_every_record_once(browser_app):
    seen, url = [], "/TestProject/?limit=25&order=label"
    page = browser_app.get(url, headers=HTML)
    seen += labels_of(page)
    assert not page.html.select_one("#next-page")  # 4 < 25
    # A smaller page through the same cursor machinery (limit must be an offered size:
    # an unknown one falls back to the default).
    assert labels_of(browser_app.get("/TestProject/?limit=7", headers=HTML))
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 4


def test_pagination_over_many_records(browser_app, storage):
    with transaction.manager:
        for i in range(60):
            storage.put_record(build_stored_record("TestProject2", record_doc(
                f"run{i:03d}", timestamp=f"2024-02-01 10:{i // 60:02d}:{i % 60:02d}")),
                create=True)
    login(browser_app)
    seen, url = [], "/TestProject2/?order=label&limit=25"
    while url:
        page = browser_app.get(url, headers=HTML)
        seen += labels_of(page)
        assert page.html.select_one("#record-count strong").text == "61"
        link = page.html.select_one("#next-page")
        url = link["href"] if link else None
    assert len(seen) == 61 and len(set(seen)) == 61
    assert seen == sorted(seen)


def test_bad_cursor_is_a_400_page(browser_app):
    page = browser_app.get("/TestProject/?cursor=garbage", headers=HTML, status=400)
    assert "text/html" in page.content_type and "page link is broken" in page.text


def test_empty_project_shows_how_to_record(browser_app):
    form = browser_app.get("/", headers=HTML).forms["create-project"]
    form["id"] = "Empty1"
    page = form.submit(status=303).follow(headers=HTML)
    assert "No records yet" in page.text and "smt init" in page.text


def test_project_page_with_10000_records_renders_first_page_fast(browser_app, storage):
    with transaction.manager:
        for i in range(10_000):
            storage.put_record(build_stored_record("TestProject", record_doc(
                f"bulk{i:05d}", timestamp=f"2020-01-01 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:"
                f"{i % 60:02d}", tags=[f"t{i % 7}"],
                parameters={"content": f"n = {i}", "type": "SimpleParameterSet"})),
                create=True)
    browser_app.get("/TestProject/", headers=HTML)  # warm up
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        page = browser_app.get("/TestProject/?tags=t3&order=label", headers=HTML)
        timings.append(time.perf_counter() - start)
    assert page.html.select_one("#record-count strong").text == str(10_000 // 7 + 1)
    assert len(labels_of(page)) == 50
    start = time.perf_counter()
    page = browser_app.get("/TestProject/", headers=HTML)
    first = time.perf_counter() - start
    assert page.html.select_one("#record-count strong").text == "10004"
    assert len(labels_of(page)) == 50
    print(f"first page of 10,004 records: {first * 1000:.0f} ms; "
          f"filtered+sorted: {min(timings) * 1000:.0f} ms")
    assert first < 2.0 and min(timings) < 2.0


# -- record page ---------------------------------------------------------------------------


def test_record_page_shows_every_section(browser_app):
    page = browser_app.get("/TestProject/haggling/", headers=HTML)
    html = page.html
    params = {th.text: td.text for th, td in zip(
        html.select("#parameters table.nested th"), html.select("#parameters table.nested td"),
        strict=True)}
    assert params == {"n": "50", "seed": "34326", "distr": "normal"}
    assert "seed = 34326" in html.select_one("#parameters details pre").text  # raw
    outputs = html.select("#data table.data")[0].select("tbody tr")
    assert len(outputs) == 2
    assert outputs[0].select_one("td.digest")["title"] == "43a47cb379df2a7008fdeb38c6172278d000fdc4"
    assert "2.4 kB" in outputs[0].text or "2.5 kB" in outputs[0].text
    deps = [tr.select("td")[0].text for tr in html.select("#dependencies tbody tr")]
    assert "numpy" in deps
    assert "Darwin" in html.select_one("#platforms").text
    assert "SerialLaunchMode" in html.select_one("#code").text
    assert "FileSystemDataStore" in html.select_one("#code").text
    assert html.select_one("#json-url")["value"].endswith("/TestProject/haggling/?format=json")
    assert "apparently, it is worth NaN" in page.forms["edit-form"]["outcome"].value


def test_record_page_colours_diffs_and_shows_stdout(browser_app, storage):
    put_record(storage, "TestProject", record_doc(
        "withdiff", diff="--- a/main.py\n+++ b/main.py\n@@ -1 +1 @@\n-old\n+new\n",
        stdout_stderr="line 1\nline 2\n",
        dependencies=[{"name": "mylib", "version": "1.0", "path": "/x", "module": "python",
                       "diff": "-a\n+b", "source": None}]))
    html = browser_app.get("/TestProject/withdiff/", headers=HTML).html
    assert [s.text for s in html.select("#code pre.diff .d-add")] == ["+new"]
    assert [s.text for s in html.select("#code pre.diff .d-meta")] == ["--- a/main.py",
                                                                        "+++ b/main.py"]
    assert [s.text for s in html.select("#code pre.diff .d-del")] == ["-old"]
    assert html.select("#code pre.diff .d-hunk")[0].text == "@@ -1 +1 @@"
    assert html.select_one("#dependencies pre.diff .d-add").text == "+b"
    assert html.select_one("pre.console").text == "line 1\nline 2\n"


def test_last_shows_the_most_recent_record(browser_app):
    page = browser_app.get("/TestProject/last/", headers=HTML)
    assert page.html.select_one("h1").text == "haggling_repeat"


def test_read_only_viewer_sees_no_forms(testapp):
    page = testapp.get("/TestProject2/20141013-172504/", headers=HTML)
    assert "edit-form" not in page.forms and "delete-record" not in page.text
    table = testapp.get("/TestProject2/", headers=HTML)
    assert "add-tag" not in table.text and "compare-selected" in table.text


# -- compare and parameter table -----------------------------------------------------------


def test_compare_highlights_differences(browser_app, storage):
    put_record(storage, "TestProject", record_doc(
        "out1", output_data=[{"path": "a.dat", "digest": "1", "metadata": {}, "creation": None},
                             {"path": "b.dat", "digest": "2", "metadata": {}, "creation": None}]))
    put_record(storage, "TestProject", record_doc(
        "out2", output_data=[{"path": "a.dat", "digest": "1", "metadata": {}, "creation": None},
                             {"path": "b.dat", "digest": "3", "metadata": {}, "creation": None},
                             {"path": "c.dat", "digest": "4", "metadata": {}, "creation": None}]))
    html = browser_app.get("/TestProject/@@compare?labels=out1,out2", headers=HTML).html
    rows = {tr.select_one("th").text: (tr["class"][0], [td.text for td in tr.select("td")])
            for tr in html.select("#cmp-outputs tr:not(.group)")}
    assert rows == {"a.dat": ("same", ["1", "1"]), "b.dat": ("differs", ["2", "3"]),
                    "c.dat": ("differs", ["—", "4"])}
    html = browser_app.get("/TestProject/@@compare?label=haggling&label=20111013-172503",
                           headers=HTML).html
    params = {tr.select_one("th").text: tr["class"][0]
              for tr in html.select("#cmp-parameters tr:not(.group)")}
    assert params == {"distr": "differs", "n": "differs", "seed": "differs"}
    fields = {tr.select_one("th").text: tr["class"][0]
              for tr in html.select("#cmp-fields tr:not(.group)")}
    assert fields["Main file"] == "same" and fields["Reason"] == "differs"
    # haggling lists example2.dat twice (two digests): both rows are kept.
    outputs = [tr.select_one("th").text for tr in html.select("#cmp-outputs tr:not(.group)")]
    assert outputs == ["example2.dat", "example2.dat #2"]


def test_compare_needs_two_records(browser_app):
    page = browser_app.get("/TestProject/@@compare?labels=haggling,nosuch", headers=HTML)
    assert "No record nosuch" in page.text and "Pick two or more" in page.text


def test_parameter_table_and_csv(browser_app):
    page = browser_app.get("/TestProject/@@parameters", headers=HTML)
    keys = [th.text for th in page.html.select("#parameter-table thead th")]
    assert keys == ["Label", "Timestamp", "distr", "n", "seed", "tau_m"]
    assert len(page.html.select("#parameter-table tbody tr")) == 4
    res = browser_app.get(page.html.select_one("#csv-link")["href"])
    assert res.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(res.text)))
    assert {r["label"]: r["n"] for r in rows} == {
        "haggling_repeat": "50", "20111013-172514": "100", "haggling": "50",
        "20111013-172503": "100"}
    assert {r["label"]: r["tau_m"] for r in rows}["20111013-172514"] == "10.0"
    filtered = browser_app.get("/TestProject/@@parameters.csv?tags=foobar").text
    assert len(list(csv.DictReader(io.StringIO(filtered)))) == 1


# -- errors and access ---------------------------------------------------------------------


def test_error_pages_use_the_layout(browser_app, testapp):
    page = browser_app.get("/NoSuchProject/", headers=HTML, status=404)
    assert "header" in page.text and "All projects" in page.text
    assert "Sumatra Server" in page.html.select_one("a.brand").text
    page = browser_app.get("/TestProject/nosuch/", headers=HTML, status=404)
    assert page.html.select_one(".error-code").text == "404"


def test_403_page_for_a_user_without_access(testapp, storage):
    from pyramid_sumatra.passwords import hash_password
    from pyramid_sumatra.storage.types import UserInfo

    with transaction.manager:
        storage.put_user(UserInfo("bob", hash_password("bobpass")))
    login(testapp, "bob", "bobpass")
    page = testapp.get("/TestProject/", headers=HTML, status=403)
    assert page.html.select_one(".error-code").text == "403" and "bob" in page.text


def test_anonymous_is_sent_to_login_for_private_pages(testapp):
    for url in ("/TestProject/", "/TestProject/haggling/", "/TestProject/@@compare",
                "/TestProject/@@parameters", "/TestProject/permissions/"):
        res = testapp.get(url, headers=HTML, status=302)
        assert "/_login?next=" in res.location


def test_json_still_served_to_api_clients(browser_app):
    res = browser_app.get("/TestProject/haggling/?format=json")
    assert res.json["label"] == "haggling"
    res = browser_app.get("/TestProject/", headers={
        **basic(), "Accept": "application/vnd.sumatra.project-v4+json"})
    assert len(res.json["records"]) == 4


# -- parameter parsing -----------------------------------------------------------------


@pytest.mark.parametrize(("parameters", "expected"), [
    ({"content": 'n = 100 # number\ndistr = "uni#form" # c\nx = [1, 2]\nname = bare',
      "type": "SimpleParameterSet"}, {"n": 100, "distr": "uni#form", "x": [1, 2], "name": "bare"}),
    ({"content": '{"a": {"b": 1, "c": [1, 2]}, "d": true}', "type": "JSONParameterSet"},
     {"a": {"b": 1, "c": [1, 2]}, "d": True}),
    ({"content": "a:\n  b: 1\nc: x\n", "type": "YAMLParameterSet"}, {"a": {"b": 1}, "c": "x"}),
    ({"content": "{'a': 1, 'b': {'c': 'd'}}", "type": "NTParameterSet"},
     {"a": 1, "b": {"c": "d"}}),
    ({"content": "[sim]\ndt = 0.1\nname = x\n", "type": "ConfigParserParameterSet"},
     {"sim": {"dt": 0.1, "name": "x"}}),
    ({"content": "{}", "type": "dict"}, {}),
    ({"content": "__import__('os').system('true')", "type": "NTParameterSet"}, None),
    ({"content": "not parameters at all", "type": "Unknown"}, None),
    ("n = 3", {"n": 3}),
])
def test_parse_parameters(parameters, expected):
    assert parse_parameters(parameters).values == expected


def test_flatten_uses_dotted_names():
    assert flatten({"a": {"b": {"c": 1}}, "d": 2, "e": {}}) == {"a.b.c": 1, "d": 2, "e": {}}


@pytest.mark.parametrize("version", ["0.3", "0.4", "0.5", "0.6", "0.7"])
def test_records_written_by_old_sumatra_versions_render(browser_app, storage, version):
    from conftest import load_example

    doc = load_example(f"example_{version}.json")
    put_record(storage, "TestProject", doc)
    page = browser_app.get(f"/TestProject/{doc['label']}/", headers=HTML)
    assert page.html.select_one("h1").text == doc["label"]
    for tag in doc["tags"] if isinstance(doc["tags"], list) else doc["tags"].split(","):
        assert tag.strip() in page.html.select_one("dl.summary").text
    if "data_key" in doc:
        assert "data_key" in page.html.select_one("#other").text
    compared = browser_app.get(f"/TestProject/@@compare?labels={doc['label']},20111013-172503",
                               headers=HTML)
    assert compared.html.select("#cmp-fields tr.differs")
    assert browser_app.get("/TestProject/@@parameters", headers=HTML).status_int == 200


def test_parameter_csv_neutralises_formulas(browser_app, storage):
    put_record(storage, "TestProject2", record_doc("formula", parameters={
        "content": '{"f": "=HYPERLINK(\\"http://x\\")", "neg": -3, "at": "@SUM(A1)"}',
        "type": "JSONParameterSet"}))
    rows = list(csv.DictReader(io.StringIO(
        browser_app.get("/TestProject2/@@parameters.csv?labels=formula").text)))
    assert rows == [{"label": "formula", "timestamp": "2024-01-31 10:15:00",
                     "at": "'@SUM(A1)", "f": "'=HYPERLINK(\"http://x\")", "neg": "-3"}]
