"""Limits: body size (413, before and while reading), tags and names (400 naming the field),
and slow or truncated uploads, which waitress buffers so they never tie up the app."""

from __future__ import annotations

import io
import json
import socket
import time
import urllib.request

import pytest
import webob
from apps import make_app  # noqa: F401 - fixture
from conftest import LiveServer, basic

RECORD = "application/vnd.sumatra.record-v4+json"
LIMIT = 4000


def record(label: str, **extra) -> dict:
    return {"label": label, "timestamp": "2024-01-31 10:15:00", "reason": "limits", **extra}


@pytest.fixture
def app(make_app):  # noqa: F811
    return make_app(**{"sumatra.max_body_size": str(LIMIT), "sumatra.max_tags": "5",
                       "sumatra.max_tag_length": "20"})


def stored(app, label: str):
    return app.app.registry["sumatra.storage"].get_record("TestProject", label)


class ExplodingInput:
    """A request body the app must never read."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


def put_environ(label: str, body_input, **environ: str) -> webob.Request:
    request = webob.Request.blank(f"/TestProject/{label}/", method="PUT",
                                  headers={**basic(), "Content-Type": RECORD})
    request.environ.pop("CONTENT_LENGTH", None)
    request.environ.update({"wsgi.input": body_input, **environ})
    return request


# -- body size ------------------------------------------------------------------------


def test_declared_length_over_the_limit_is_413_without_reading_the_body(app):
    request = put_environ("big", ExplodingInput(), CONTENT_LENGTH=str(10**9))
    response = request.get_response(app.app)
    assert response.status_int == 413
    assert response.json["error"] == "request body too large"
    assert str(LIMIT) in response.json["detail"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # a full response
    assert stored(app, "big") is None


def test_body_without_length_is_cut_at_the_limit(app):
    big = json.dumps(record("streamed", stdout_stderr="x" * (LIMIT * 3))).encode()
    request = put_environ("streamed", io.BytesIO(big), **{"wsgi.input_terminated": True})
    response = request.get_response(app.app)
    assert response.status_int == 413 and response.json["error"] == "request body too large"
    assert stored(app, "streamed") is None


def test_body_without_length_under_the_limit_is_stored(app):
    doc = record("small", stdout_stderr="ok")
    request = put_environ("small", io.BytesIO(json.dumps(doc).encode()),
                          **{"wsgi.input_terminated": True})
    response = request.get_response(app.app)
    assert response.status_int == 201
    assert stored(app, "small").document == doc


def test_body_longer_than_its_declared_length_is_read_only_that_far(app):
    body = json.dumps(record("liar")).encode()
    request = put_environ("liar", io.BytesIO(body + b"x" * LIMIT * 3),
                          CONTENT_LENGTH=str(len(body) - 5))
    response = request.get_response(app.app)
    assert response.status_int == 400 and response.json["field"] == "body"
    assert stored(app, "liar") is None


@pytest.mark.parametrize("length", ["-1", "lots"])
def test_malformed_content_length_is_400(app, length):
    request = put_environ("neg", ExplodingInput(), CONTENT_LENGTH=length)
    assert request.get_response(app.app).status_int == 400


def test_body_at_the_limit_is_accepted(app):
    doc = record("exact", stdout_stderr="")
    padding = LIMIT - len(json.dumps(doc).encode())
    doc["stdout_stderr"] = "y" * padding
    body = json.dumps(doc).encode()
    assert len(body) == LIMIT
    app.put("/TestProject/exact/", body, headers={**basic(), "Content-Type": RECORD},
            status=201)


# -- tags and names ---------------------------------------------------------------------


@pytest.mark.parametrize("tags,ok", [
    (["a", "b", "c", "d", "e"], True),
    (["a", "b", "c", "d", "e", "f"], False),
    ("a,b,c,d,e,f", False),  # the old comma-separated form counts the same
    (["t" * 20], True),
    (["t" * 21], False),
])
def test_tag_limits(app, tags, ok):
    res = app.put_json("/TestProject/tagged1/", record("tagged1", tags=tags),
                       headers={**basic(), "Content-Type": RECORD}, status="*")
    if ok:
        assert res.status_int == 201
    else:
        assert res.status_int == 400
        assert res.json["field"] == "tags" and "tag" in res.json["detail"]
        assert stored(app, "tagged1") is None


def test_tag_limits_apply_to_updates(app):
    headers = {**basic(), "Content-Type": RECORD}
    app.put_json("/TestProject/upd/", record("upd", tags=["a"]), headers=headers, status=201)
    res = app.put_json("/TestProject/upd/", record("upd", tags=list("abcdefg")),
                       headers=headers, status=400)
    assert res.json["field"] == "tags"
    assert stored(app, "upd").tags == ["a"]


@pytest.mark.parametrize("url,field", [
    ("/TestProject/" + "l" * 101 + "/", "label"),
    ("/" + "p" * 101 + "/", "project id"),
    ("/" + "p" * 101 + "/r1/", "project id"),
])
def test_names_longer_than_100_are_400_naming_the_field(app, url, field):
    label = url.rstrip("/").rsplit("/", 1)[1]
    res = app.put_json(url, record(label), headers={**basic(), "Content-Type": RECORD},
                       status=400)
    assert res.json["detail"].startswith(field) and "100" in res.json["detail"]


def test_names_of_100_characters_are_fine(app):
    label = "l" * 100
    app.put_json(f"/TestProject/{label}/", record(label),
                 headers={**basic(), "Content-Type": RECORD}, status=201)


# -- over a real socket -------------------------------------------------------------------


def http_request(port: int, head: str, body: bytes = b"", timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode() + body)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def request_head(method: str, path: str, **headers: str) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
             *(f"{k}: {v}" for k, v in basic().items())]
    return "\r\n".join(lines) + "\r\n\r\n"


def test_chunked_upload_past_the_limit_is_413_json(app):
    with LiveServer(app.app) as server:
        chunk = b"x" * 1000
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10)) + b"0\r\n\r\n"
        raw = http_request(server.port, request_head(
            "PUT", "/TestProject/chunky/", Content_Type=RECORD,
            Transfer_Encoding="chunked"), body)
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(payload)["error"] == "request body too large"
    assert stored(app, "chunky") is None


def test_truncated_upload_holds_no_worker_and_stores_nothing(app):
    """waitress buffers bodies: a client that stops mid-body never reaches the app.

    With ONE worker thread, reads and writes (of the same project) still go
    through while the upload hangs, so it holds no thread, connection or lock.
    """
    body = json.dumps(record("truncated", stdout_stderr="z" * 1000)).encode()
    with LiveServer(app.app, threads=1) as server:
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        slow.sendall(request_head("PUT", "/TestProject/truncated/", Content_Type=RECORD,
                                  Content_Length=str(len(body))).encode() + body[:100])
        time.sleep(0.2)
        start = time.monotonic()
        for i in range(5):
            req = urllib.request.Request(
                f"{server.url}TestProject/other{i}/", method="PUT", headers={
                    **basic(), "Content-Type": RECORD},
                data=json.dumps(record(f"other{i}")).encode())
            with urllib.request.urlopen(req, timeout=15) as res:
                assert res.status == 201
            req = urllib.request.Request(f"{server.url}TestProject/", headers=basic())
            with urllib.request.urlopen(req, timeout=15) as res:
                assert res.status == 200
        assert time.monotonic() - start < 20  # blocked, it would wait for channel_timeout
        slow.close()  # the client gives up: the partial body is thrown away
        time.sleep(0.2)
        with urllib.request.urlopen(f"{server.url}_health", timeout=5) as res:
            assert res.status == 200
    assert stored(app, "truncated") is None
    assert stored(app, "other4") is not None
