"""Record bodies at the HTTP level on every backend (a backend may re-serialise them).

PostgreSQL cannot hold NUL characters: the app refuses
NULs with a 400 for every backend alike, and never lets a re-serialised body change
a record's ETag.
"""

from __future__ import annotations

import json

from conftest import V4, basic, served


def test_a_put_with_a_nul_is_refused_and_stores_nothing(testapp, backend_name):
    doc = {"label": "nul1", "timestamp": "2024-01-01 00:00:00", "stdout_stderr": "a\x00b"}
    res = testapp.put("/TestProject/nul1/", json.dumps(doc),
                      headers={**basic(), "Content-Type": V4.format("record")}, status=400)
    assert "stdout_stderr" in res.json["detail"] + res.json["error"]
    testapp.get("/TestProject/nul1/", headers=basic(), status=404)


def test_etags_agree_after_a_repeated_put(testapp, backend_name):
    """A backend may re-serialise bodies (JSONB reorders keys); ETags must not drift."""
    doc = {"timestamp": "2024-01-01 00:00:00", "label": "same", "zeta": 1, "alpha": [2],
           "reason": "r", "tags": ["t"]}
    headers = {**basic(), "Content-Type": V4.format("record"), "Accept": V4.format("record")}
    created = testapp.put("/TestProject/same/", json.dumps(doc), headers=headers, status=201)
    again = testapp.put("/TestProject/same/", json.dumps(doc), headers=headers, status=200)
    got = testapp.get("/TestProject/same/", headers=headers)
    assert got.json == served(doc, "TestProject")
    assert created.headers["ETag"] == again.headers["ETag"] == got.headers["ETag"]
    testapp.put("/TestProject/same/", json.dumps(doc),
                headers={**headers, "If-Match": got.headers["ETag"]}, status=200)
