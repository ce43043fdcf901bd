"""The OpenAPI description: valid, served, and the same set of routes and media types as the app."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import basic
from openapi_spec_validator import validate

from pyramid_sumatra import resources
from pyramid_sumatra.negotiation import accepted_body_types, offers
from pyramid_sumatra.openapi import default_description, dumps

#: Where each traversal context lives in the URL tree (the description's path templates).
CONTEXT_PATHS: dict[type, list[str]] = {
    resources.Root: ["/"],
    resources.Project: ["/{project}/"],
    resources.Record: ["/{project}/{label}/"],
    resources.TagSet: ["/{project}/tag/{tag}/", "/{project}/tagged/{tag}/"],
    resources.Last: ["/{project}/last/"],
    resources.Permissions: ["/{project}/permissions/"],
}
#: Views that answer for any context and method (the 404/405/406/400 rules), not routes.
CATCH_ALL_CONTEXTS = {resources.Resource, resources.InvalidName}
METHODS = ("get", "put", "post", "delete")


def served_operations(registry) -> set[tuple[str, str]]:
    """(path template, method) of every view the app registers, from Pyramid's introspector."""
    introspector = registry.introspector
    routes = {r["name"]: r["pattern"] for r in introspector.get_category("routes", [])
              for r in [r["introspectable"]]}
    found = set()
    for entry in introspector.get_category("views"):
        view = entry["introspectable"]
        context = view["context"]
        if view["exception_only"] or (isinstance(context, type)
                                      and issubclass(context, BaseException)):
            continue
        if context is not None and not isinstance(context, type):
            continue  # an interface: Pyramid's own default exception view
        methods = view["request_methods"] or ("GET",)
        methods = (methods,) if isinstance(methods, str) else methods
        if view["route_name"]:
            pattern = routes[view["route_name"]]
            if pattern.endswith("*subpath"):  # the static view
                pattern = pattern.replace("*subpath", "{path}")
            paths = ["/" + pattern.lstrip("/")]
        else:
            if context in CATCH_ALL_CONTEXTS:
                continue
            assert context in CONTEXT_PATHS, f"a view on an unknown context {context}"
            name = view["name"]
            paths = [p + (f"@@{name}" if name else "") for p in CONTEXT_PATHS[context]]
        found |= {(path, m.lower()) for path in paths for m in methods if m != "HEAD"}
    return found


def described_operations(description: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in description["paths"].items()
            for method in METHODS if method in item}


def test_description_is_valid_openapi_3_1():
    description = default_description()
    assert description["openapi"].startswith("3.1")
    validate(description)


def test_committed_file_is_the_generated_description():
    committed = Path(__file__).parent.parent / "pyramid_sumatra" / "openapi.json"
    assert committed.read_text() == dumps(default_description()), (
        "regenerate: python -m pyramid_sumatra.openapi > pyramid_sumatra/openapi.json")


def test_every_served_route_is_described_and_vice_versa(wsgi_app):
    served = served_operations(wsgi_app.registry)
    described = described_operations(default_description())
    assert served - described == set(), (
        "served but not described: add them to pyramid_sumatra/openapi.py (_paths or "
        "_browser_paths), then: python -m pyramid_sumatra.openapi > pyramid_sumatra/openapi.json")
    assert described - served == set(), "described but not served"


def test_media_types_match_negotiation():
    paths = default_description()["paths"]
    kinds = {"/": "project-list", "/{project}/": "project", "/{project}/{label}/": "record",
             "/{project}/tag/{tag}/": "project", "/{project}/last/": "record"}
    for path, kind in kinds.items():
        content = paths[path]["get"]["responses"]["200"]["content"]
        streamed = ["application/x-ndjson"] if path == "/{project}/" else []  # views/search.py
        assert list(content) == [rep.media_type for rep in offers(kind)] + streamed, path
    for path, kind in (("/{project}/", "project"), ("/{project}/{label}/", "record")):
        assert set(paths[path]["put"]["requestBody"]["content"]) == accepted_body_types(kind)


def test_served_description_names_this_server_and_its_limits(app_settings, demo):
    import webtest

    import pyramid_sumatra

    app = webtest.TestApp(pyramid_sumatra.main({}, **{**app_settings,
                                                      "sumatra.max_tags": "7"}))
    res = app.get("/_api/openapi.json")
    assert res.content_type == "application/json"
    description = res.json
    validate(description)
    assert description["servers"] == [{"url": "http://localhost"}]
    tags = description["components"]["schemas"]["RecordPut"]["properties"]["tags"]
    assert tags["maxItems"] == 7
    app.app.registry["sumatra.storage"].dispose()


def test_readable_page_lists_every_operation(testapp):
    res = testapp.get("/_api/", headers={"Accept": "text/html"})
    assert res.content_type == "text/html"
    assert 'href="http://localhost/_api/openapi.json"' in res.text
    for path, method in described_operations(default_description()):
        assert f"<code>{path}</code>" in res.text
        assert f"<code>{method.upper()}</code>" in res.text
    assert not re.search(r"<script(?![^>]*\bsrc=)", res.text)  # the CSP allows no inline script


@pytest.mark.parametrize("path,kind,url", [
    ("/", "project-list", "/"),
    ("/{project}/", "project", "/TestProject/"),
    ("/{project}/{label}/", "record", None),
    ("/{project}/tag/{tag}/", "project", "/TestProject/tag/foobar/"),
    ("/{project}/last/", "record", "/TestProject/last/"),
    ("/{project}/permissions/", "project", "/TestProject/permissions/"),
])
def test_every_described_media_type_is_served(testapp, path, kind, url):
    if url is None:
        labels = testapp.get("/TestProject/", headers={**basic(), "Accept": "application/json"})
        url = "/TestProject/" + labels.json["records"][0].rsplit("/", 2)[-2] + "/"
    content = default_description()["paths"][path]["get"]["responses"]["200"]["content"]
    for media_type in content:
        res = testapp.get(url, headers={**basic(), "Accept": media_type})
        assert res.content_type == media_type, (url, media_type)
        assert res.charset.lower() == "utf-8"
        if media_type == "application/x-ndjson":
            assert [json.loads(line)["label"] for line in res.text.splitlines()]
        elif media_type != "text/html":
            json.loads(res.text)
