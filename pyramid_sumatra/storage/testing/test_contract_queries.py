"""Contract: selecting records (filters, order, pages, totals) with sumatra_query_records."""

from __future__ import annotations

import pytest
import transaction

from pyramid_sumatra.storage.testing.support import labels, put, record
from pyramid_sumatra.storage.types import RecordQuery


def query(store, project, **kwargs):
    with transaction.manager:
        return store.query_records(project, RecordQuery(**kwargs))


@pytest.fixture
def sample(store, project):
    """Five records with distinct fields (timestamps, users, files, tags, texts)."""
    put(store,
        record(project, "alpha", "2024-01-01 09:00:00", user="ann", main_file="a.py",
               reason="Calibrate the probe", tags=["calib", "v1"], duration=3.0,
               executable={"name": "Python", "path": "/usr/bin/python", "version": "3.11"}),
        record(project, "bravo", "2024-01-02 09:00:00", user="bob", main_file="b.py",
               outcome="probe failed", tags=["v1"], duration=1.0),
        record(project, "charlie", "2024-01-03 09:00:00", user="ann", main_file="a.py",
               tags=["v2"], duration=2.0),
        record(project, "delta", "2024-01-03 09:00:00", user="cid", main_file="c.py",
               reason="rerun", duration=5.0),
        record(project, "echo", "2024-01-05 09:00:00", user="bob", main_file="a.py",
               tags=["calib"], duration=4.0))
    return project


def test_default_order_is_newest_first_ties_by_label(store, sample):
    page = query(store, sample)
    assert labels(page) == ["echo", "delta", "charlie", "bravo", "alpha"]
    assert page.total == 5
    assert page.next_cursor is None


def test_bodies_only_when_asked(store, sample):
    assert all(r.body is None for r in query(store, sample).records)
    with_body = query(store, sample, with_body=True).records
    assert [r.document["label"] for r in with_body] == labels(query(store, sample))
    echo = with_body[0]
    assert (echo.user, echo.main_file, echo.tags, echo.duration) == ("bob", "a.py",
                                                                     ["calib"], 4.0)


@pytest.mark.parametrize("order, expected", [
    ("timestamp", ["alpha", "bravo", "charlie", "delta", "echo"]),
    ("-timestamp", ["echo", "delta", "charlie", "bravo", "alpha"]),
    ("label", ["alpha", "bravo", "charlie", "delta", "echo"]),
    ("-label", ["echo", "delta", "charlie", "bravo", "alpha"]),
    ("duration", ["bravo", "charlie", "alpha", "echo", "delta"]),
    ("-duration", ["delta", "echo", "alpha", "charlie", "bravo"]),
    ("user", ["alpha", "charlie", "bravo", "echo", "delta"]),  # ties by label
    ("-user", ["delta", "echo", "bravo", "charlie", "alpha"]),
    ("main_file", ["alpha", "charlie", "echo", "bravo", "delta"]),
])
def test_order_fields(store, sample, order, expected):
    assert labels(query(store, sample, order=order)) == expected


@pytest.mark.parametrize("order", ["body", "-nonsense", "tags", ""])
def test_unknown_order_raises_value_error(store, sample, order):
    with pytest.raises(ValueError):
        query(store, sample, order=order)


@pytest.mark.parametrize("tags, expected", [
    (["calib"], ["echo", "alpha"]),
    (["v1", "v2"], ["charlie", "bravo", "alpha"]),  # any of the tags
    (["calib", "v1"], ["echo", "bravo", "alpha"]),  # a record having both comes once
    (["nothing"], []),
])
def test_tags_any_of(store, sample, tags, expected):
    page = query(store, sample, tags=tags)
    assert labels(page) == expected
    assert page.total == len(expected)


@pytest.mark.parametrize("filters, expected", [
    ({"text": "probe"}, ["bravo", "alpha"]),  # reason or outcome
    ({"text": "harl"}, ["charlie"]),  # label
    ({"text": "rerun"}, ["delta"]),
    ({"user": "ann"}, ["charlie", "alpha"]),
    ({"main_file": "a.py"}, ["echo", "charlie", "alpha"]),
    ({"since": "2024-01-03 09:00:00"}, ["echo", "delta", "charlie"]),  # inclusive
    ({"until": "2024-01-02 09:00:00"}, ["bravo", "alpha"]),  # inclusive
    ({"since": "2024-01-02 00:00:00", "until": "2024-01-03 23:59:59"},
     ["delta", "charlie", "bravo"]),
    ({"user": "ann", "tags": ["v2"], "main_file": "a.py"}, ["charlie"]),  # all filters apply
    ({"user": "nobody"}, []),
])
def test_filters(store, sample, filters, expected):
    page = query(store, sample, **filters)
    assert labels(page) == expected
    assert page.total == len(expected)


def test_queries_stay_in_their_project(store, sample):
    from pyramid_sumatra.storage.types import ProjectInfo

    with transaction.manager:
        store.put_project(ProjectInfo(id="Other"))
    put(store, record("Other", "zulu", user="ann", tags=["calib"]))
    assert labels(query(store, sample, tags=["calib"])) == ["echo", "alpha"]
    assert labels(query(store, "Other")) == ["zulu"]
    assert query(store, "no-such-project").records == []


def test_total_ignores_limit_and_cursor(store, sample):
    first = query(store, sample, limit=2)
    assert labels(first) == ["echo", "delta"] and first.total == 5
    second = query(store, sample, limit=2, cursor=first.next_cursor)
    assert labels(second) == ["charlie", "bravo"] and second.total == 5
    filtered = query(store, sample, limit=1, user="ann")
    assert filtered.total == 2 and len(filtered.records) == 1


def walk(store, project, limit, **kwargs) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = query(store, project, limit=limit, cursor=cursor, **kwargs)
        pages.append(labels(page))
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) < 100, "cursors do not terminate"


@pytest.mark.parametrize("order", ["-timestamp", "timestamp", "label", "-duration", "user"])
@pytest.mark.parametrize("limit", [1, 2, 5, 7])
def test_pages_cover_everything_exactly_once(store, sample, order, limit):
    everything = labels(query(store, sample, order=order))
    pages = walk(store, sample, limit, order=order)
    assert [label for page in pages for label in page] == everything
    assert all(len(page) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= limit


def test_pages_with_many_ties(store, project):
    put(store, *(record(project, f"r{i:02d}", "2024-01-01 00:00:00") for i in range(23)))
    pages = walk(store, project, 5)
    flat = [label for page in pages for label in page]
    assert flat == [f"r{i:02d}" for i in reversed(range(23))]
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]


def test_pages_of_a_filtered_query(store, sample):
    pages = walk(store, sample, 1, main_file="a.py")
    assert pages == [["echo"], ["charlie"], ["alpha"]]


def test_cursor_is_stable_under_concurrent_inserts(store, project):
    put(store, *(record(project, f"r{i:02d}", f"2024-01-{i + 1:02d} 00:00:00")
                 for i in range(10)))
    first = query(store, project, limit=4)
    assert labels(first) == ["r09", "r08", "r07", "r06"]
    # Between pages, another writer adds records before and after the cursor (two of
    # them tying its timestamp), and deletes one already seen.
    put(store, record(project, "newest", "2025-01-01 00:00:00"),
        record(project, "oldest", "2000-01-01 00:00:00"),
        record(project, "r06z", "2024-01-07 00:00:00"),  # ties r06, label after it: before
        record(project, "r05z", "2024-01-07 00:00:00"),  # ties r06, label before it: after
        record(project, "r05b", "2024-01-06 00:00:00"))
    with transaction.manager:
        store.delete_record(project, "r08")
    rest, cursor = [], first.next_cursor
    while cursor:
        page = query(store, project, limit=4, cursor=cursor)
        rest += labels(page)
        cursor = page.next_cursor
    # Nothing seen twice, nothing that existed all along skipped, in order.
    assert rest == ["r05z", "r05b", "r05", "r04", "r03", "r02", "r01", "r00", "oldest"]


@pytest.mark.parametrize("filters", [
    {}, {"order": "label"}, {"tags": ["calib", "v1"]}, {"user": "ann"},
    {"since": "2024-01-03 00:00:00", "order": "-duration"}, {"text": "probe"},
])
def test_labels_only_answers_the_same_labels(store, sample, filters):
    """``labels_only`` lets a backend skip StoredRecords; the labels must not change."""
    full = query(store, sample, **filters)
    short = query(store, sample, labels_only=True, **filters)
    assert short.all_labels() == labels(full)
    assert short.total == full.total
    pages, cursor = [], None
    while True:
        page = query(store, sample, labels_only=True, limit=2, cursor=cursor, **filters)
        pages += page.all_labels()
        assert page.total == full.total
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == labels(full)


def test_text_ignores_case_and_is_a_plain_substring(store, sample):
    put(store, record(sample, "foxtrot", "2024-01-06 09:00:00", reason="50% done, x_y"),
        record(sample, "golf", "2024-01-07 09:00:00", outcome="Été chaud"))
    assert labels(query(store, sample, text="CALIBRATE")) == ["alpha"]
    assert labels(query(store, sample, text="Probe")) == ["bravo", "alpha"]
    assert labels(query(store, sample, text="%")) == ["foxtrot"], "% is no wildcard"
    assert labels(query(store, sample, text="x_y")) == ["foxtrot"]
    assert labels(query(store, sample, text="a_p")) == [], "_ is no wildcard"
    assert labels(query(store, sample, text="ÉTÉ")) == ["golf"], "case of any letter"


def test_limit_zero_counts_without_records(store, sample):
    page = query(store, sample, limit=0)
    assert (page.records, page.next_cursor, page.total) == ([], None, 5)
    page = query(store, sample, limit=0, user="ann")
    assert (page.records, page.next_cursor, page.total) == ([], None, 2)
    page = query(store, sample, limit=0, labels_only=True)
    assert (page.all_labels(), page.next_cursor, page.total) == ([], None, 5)


def test_date_only_since_and_until_compare_as_text(store, sample):
    assert labels(query(store, sample, since="2024-01-03")) == ["echo", "delta", "charlie"]
    # A date alone sorts before that day's timestamps: until excludes the day ...
    assert labels(query(store, sample, until="2024-01-03")) == ["bravo", "alpha"]
    # ... so the app sends the day's last second.
    assert labels(query(store, sample, until="2024-01-03 23:59:59")) == [
        "delta", "charlie", "bravo", "alpha"]
