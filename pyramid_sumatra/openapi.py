"""The OpenAPI 3.1 description of the HTTP API (PROTOCOL.md), built from the code's own constants.

Media types come from ``negotiation``, name rules from ``records``, limits from
the settings, so the description cannot drift from what the server does;
``tests/test_openapi.py`` checks it against the routes and views the app
registers. ``pyramid_sumatra/openapi.json`` is this description with the
default settings, for readers and tools (regenerate it with
``python -m pyramid_sumatra.openapi > pyramid_sumatra/openapi.json``).
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .limits import Limits
from .negotiation import accepted_body_types, offers
from .query.parser import MAX_DEPTH as QUERY_MAX_DEPTH
from .query.parser import MAX_LENGTH as QUERY_MAX_LENGTH
from .query.parser import MAX_TERMS as QUERY_MAX_TERMS
from .records import MAX_NAME_LENGTH, RESERVED_LABELS
from .security import REALM
from .services.search import MAX_EXPANDED

JSON = "application/json"
HTML = "text/html"
NDJSON = "application/x-ndjson"
FORM = "application/x-www-form-urlencoded"

#: The name rule of records.name_problem, as a JSON Schema pattern. "(?!\n)": in Python's
#: regexes (schemathesis) "$" also matches before a final newline; ECMA's never does.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-+@ ]*$(?!\n)"
TIMESTAMP_PATTERN = (r"^\s*\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[ T]"
                     r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]\d{2}:?\d{2})?\s*$")


def _ref(name: str, kind: str = "schemas") -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _nullable(*types: str) -> dict:
    return {"type": [*types, "null"]}


def _content(media_types: list[str], schema: dict) -> dict:
    return {media: {"schema": schema} for media in media_types}


def _representations(kind: str, schema: dict) -> dict:
    """A 200 body in each representation of ``kind`` (HTML is a page for people)."""
    content = {}
    for rep in offers(kind):
        content[rep.media_type] = {"schema": {"type": "string"} if rep.is_html else schema}
    return content


def _version() -> str:
    try:
        return version("pyramid_sumatra")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


# -- schemas -------------------------------------------------------------------


def _schemas(limits: Limits) -> dict[str, Any]:
    data_file = {
        "type": ["object", "string", "null"],
        "description": "A data file: {path, digest, metadata, creation}.",
        "additionalProperties": True,
        "properties": {"path": {}, "digest": {}, "metadata": {}, "creation": {}},
    }
    parameterised = {"type": ["object", "null"], "additionalProperties": True,
                     "properties": {"type": {}, "parameters": {}}}
    record = {
        "type": "object",
        "description": (
            "A Sumatra record exactly as the client sent it: known fields are listed with "
            "the types the server checks; any other key (older or newer Sumatra versions) "
            "is kept and served back unchanged. On a second PUT of a label, annotations "
            "and results (reason, outcome, tags, duration, output_data, stdout_stderr, "
            "repeats) are updated; every other stored field is write-once."),
        "required": ["label", "timestamp"],
        "additionalProperties": True,
        "properties": {
            "label": {"type": "string", "description": "Must equal the label in the URL."},
            "project_id": {**_nullable("string"),
                           "description": "If present, must equal the project in the URL."},
            "timestamp": {"type": "string", "pattern": TIMESTAMP_PATTERN,
                          "description": "'YYYY-MM-DD HH:MM:SS' with an optional offset."},
            "reason": _nullable("string"),
            "outcome": _nullable("string"),
            "main_file": _nullable("string"),
            "version": _nullable("string"),
            "user": _nullable("string"),
            "duration": {**_nullable("number"), "description": "Seconds."},
            "tags": {"type": ["array", "string", "null"], "items": {"type": "string"},
                     "description": "A list of strings (older clients: comma-separated)."},
            "executable": {
                "type": ["object", "null"], "additionalProperties": True,
                "properties": {"name": _nullable("string"), "path": {}, "version": {},
                               "options": {}}},
            "repository": {"type": ["object", "null"], "additionalProperties": True,
                           "properties": {"url": {}, "type": {}, "upstream": {}}},
            "parameters": {"type": ["object", "null"], "additionalProperties": True,
                           "properties": {"content": {}, "type": {}}},
            "input_data": {"type": ["array", "string", "null"], "items": data_file},
            "output_data": {"type": ["array", "string", "null"], "items": data_file},
            "script_arguments": {},
            "launch_mode": parameterised,
            "datastore": parameterised,
            "input_datastore": parameterised,
            "stdout_stderr": {},
            "diff": {},
            "dependencies": {"description": "[{path, version, name, module, diff, source}]"},
            "platforms": {"description": "[{architecture_bits, architecture_linkage, machine, "
                                         "network_name, ip_addr, processor, release, "
                                         "system_name, version}]"},
            "repeats": {},
        },
    }
    record_put = {
        "allOf": [_ref("Record")],
        "properties": {
            "tags": {
                "type": ["array", "string", "null"],
                "maxItems": limits.max_tags,
                "items": {"type": "string", "maxLength": limits.max_tag_length},
                "description": (f"At most {limits.max_tags} tags of at most "
                                f"{limits.max_tag_length} characters (settings "
                                "sumatra.max_tags, sumatra.max_tag_length)."),
            },
        },
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error", "detail"],
            "properties": {
                "error": {"type": "string", "description": "What went wrong, in a few words."},
                "detail": {"type": "string", "description": "Why, and what to do."},
                "field": {"type": "string",
                          "description": "The record field at fault (400 on a record PUT)."},
            },
            "additionalProperties": True,
        },
        "ProjectListEntry": {
            "type": "object",
            "required": ["id", "name", "description", "uri", "last_updated"],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                           "description": {"type": "string"},
                           "uri": {"type": "string", "format": "uri"},
                           "last_updated": {"type": "string"}},
        },
        "ProjectList": {"type": "array", "items": _ref("ProjectListEntry"),
                        "description": "Newest first; anonymous callers see public projects."},
        "Project": {
            "type": "object",
            "required": ["id", "name", "description", "records", "tags", "user"],
            "properties": {
                "id": {"type": "string"}, "name": {"type": "string"},
                "description": {"type": "string"},
                "records": {"type": "array", "items": {"type": "string", "format": "uri"},
                            "description": "Absolute record URLs, newest first."},
                "tags": {**_nullable("string"), "description": "The tag filter as given."},
                "user": {"type": "string",
                         "description": "The caller's username, or 'anonymous'."},
                "access": {"type": "array", "items": {"type": "string"},
                           "description": "Usernames; only for authenticated callers."},
                "next": {"type": "string", "format": "uri",
                         "description": "The next page (when ?limit= cut the list)."},
            },
        },
        "ExpandedRecords": {
            "type": "object", "required": ["id", "count", "records", "next"],
            "description": "A page of whole records (?expand=records).",
            "properties": {
                "id": {"type": "string"},
                "count": {"type": "integer", "description": "Records on this page."},
                "total": {**_nullable("integer"),
                          "description": "Every match, when counting was cheap; else null."},
                "next": {**_nullable("string"), "format": "uri",
                         "description": "The next page, or null after the last."},
                "records": {"type": "array", "items": _ref("Record")},
            },
        },
        "ProjectPut": {
            "type": "object",
            "properties": {"name": _nullable("string"), "description": _nullable("string")},
        },
        "ProjectInfo": {
            "type": "object", "required": ["id", "name", "description"],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                           "description": {"type": "string"}},
        },
        "Permissions": {
            "type": "object", "required": ["id", "name", "access"],
            "properties": {
                "id": {"type": "string"}, "name": {"type": "string"},
                "access": {"type": "array", "items": {"type": "string"}},
                "roles": {"type": "object",
                          "additionalProperties": {"enum": ["read", "write", "admin"]}},
            },
        },
        "Grant": {
            "type": "object", "required": ["user"],
            "properties": {"user": {"type": "string"},
                           "role": {"enum": ["read", "write", "admin"]}},
        },
        "Record": record,
        "RecordPut": record_put,
        "Health": {"type": "object", "required": ["status"],
                   "properties": {"status": {"const": "ok"}}},
        "Ready": {"type": "object", "required": ["ok"], "additionalProperties": True,
                  "properties": {"ok": {"type": "boolean"}, "backend": {"type": "string"},
                                 "detail": {"type": "string"}}},
    }


# -- responses and parameters ----------------------------------------------------

_ERRORS = {
    "400": "Malformed request: invalid JSON, a field of the wrong type (named in the body), "
           "a name that can never be a project or label.",
    "401": f"Authentication needed, or a wrong password: challenges with "
           f"'Basic realm=\"{REALM}\"' (httplib2 sends credentials only after it).",
    "403": "Authenticated, but this user holds no grant (or too weak a role) here.",
    "404": "No such project, record or tag route.",
    "409": "The name is taken again (restore a record or project whose name is in use).",
    "406": "None of the representations matches Accept or ?format=.",
    "412": "If-Match names an older revision: GET the resource again.",
    "413": "The request body is larger than sumatra.max_body_size.",
    "415": "The request body's Content-Type is not one this URL accepts.",
    "429": "Too many failed logins for this username: wait Retry-After seconds.",
    "503": "Storage is unavailable: retry after Retry-After seconds.",
    "507": "No space left for the write; nothing was stored.",
}


def _error_response(code: str) -> dict:
    response: dict[str, Any] = {"description": _ERRORS[code],
                                "content": {JSON: {"schema": _ref("Error")},
                                            HTML: {"schema": {"type": "string"}}}}
    if code == "401":
        response["headers"] = {"WWW-Authenticate": {
            "required": True, "schema": {"const": f'Basic realm="{REALM}"'}}}
    if code in ("429", "503"):
        response["headers"] = {"Retry-After": {
            "required": True, "schema": {"type": "string", "pattern": r"^[0-9]+$(?!\n)"}}}
    return response


def _errors(*codes: str) -> dict:
    # Every URL may answer these: a wrong password, a huge body, a locked-out
    # user, unavailable storage.
    common = ("400", "401", "413", "429", "503", "507")
    return {code: _ref(f"E{code}", "responses") for code in sorted({*common, *codes})}


_ETAG = {"ETag": {"schema": {"type": "string"}, "description": "The stored revision and "
                  "representation; send it back in If-None-Match / If-Match."}}


def _ok(description: str, content: dict, *, etag: bool = False) -> dict:
    response: dict[str, Any] = {"description": description, "content": content}
    if etag:
        response["headers"] = dict(_ETAG)
    return response


def _parameters() -> dict[str, Any]:
    name = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH,
            "pattern": NAME_PATTERN}
    return {
        "project": {"name": "project", "in": "path", "required": True, "schema": name,
                    "description": "A project id (Sumatra project name)."},
        "label": {"name": "label", "in": "path", "required": True, "schema": name,
                  "description": "A record label; never one of "
                                 + ", ".join(sorted(RESERVED_LABELS)) + "."},
        "tag": {"name": "tag", "in": "path", "required": True,
                "schema": {"type": "string", "minLength": 1, "pattern": r"^[^/]+$"}},
        "format": {"name": "format", "in": "query", "required": False,
                   "schema": {"enum": ["json", "html", "v4", "v3"]},
                   "description": "Overrides Accept."},
        "tags": {"name": "tags", "in": "query", "required": False,
                 "schema": {"type": "string"},
                 "description": "Comma-separated: records having any of these tags."},
        "limit": {"name": "limit", "in": "query", "required": False,
                  "schema": {"type": "integer", "minimum": 1, "maximum": 100_000},
                  "description": "Page size; the document then has a 'next' URL."},
        "cursor": {"name": "cursor", "in": "query", "required": False,
                   "schema": {"type": "string"},
                   "description": "Opaque, from a previous page's 'next'."},
        "q": {"name": "q", "in": "query", "required": False,
              "schema": {"type": "string", "minLength": 1, "maxLength": QUERY_MAX_LENGTH},
              "description": (
                  "A query selecting records (docs/query.md), combined with 'tags': FIELD OP "
                  "VALUE terms joined by and/or/not and parentheses. Fields: label, reason, "
                  "outcome, user, main_file, version, executable, repeats, duration, "
                  "timestamp, tags, params.NAME (a parameter by its flattened name, e.g. "
                  "params.solver.tol). Operators: = != < <= > >= ~ (contains, ASCII case "
                  "ignored), in (v1, v2), 'tags has T', 'FIELD exists'. Numbers compare as "
                  "numbers, timestamps as times, text as text. Examples: "
                  "\"params.tau_m >= 5 and params.tau_m <= 20 and params.distr = uniform and "
                  "duration < 60\", \"tags has calib and not outcome ~ 'failed'\", "
                  "\"timestamp >= 2024-01-01 and user in (ann, bob)\". A query that does not "
                  "parse is a 400 naming the position and what was expected; at most "
                  f"{QUERY_MAX_LENGTH} characters, {QUERY_MAX_TERMS} terms, {QUERY_MAX_DEPTH} "
                  "levels of nesting.")},
        "expand": {"name": "expand", "in": "query", "required": False,
                   "schema": {"enum": ["records"]},
                   "description": (
                       "records: whole record documents (as GET record serves them, with "
                       f"project_id) instead of URLs, in pages of at most {MAX_EXPANDED} "
                       "('limit', default and maximum; 'next' for the rest). With Accept: "
                       "application/x-ndjson every selected record is streamed, one document "
                       "per line ('limit' caps the count).")},
        "If-None-Match": {"name": "If-None-Match", "in": "header", "required": False,
                          "schema": {"type": "string"},
                          "description": "A cached ETag: 304 if it names the current revision."},
        "If-Match": {"name": "If-Match", "in": "header", "required": False,
                     "schema": {"type": "string"},
                     "description": "The ETag the client read: 412 if the resource changed."},
        "user": {"name": "user", "in": "query", "required": True,
                 "schema": {"type": "string", "minLength": 1},
                 "description": "The user whose grant to revoke."},
    }


def _p(*names: str) -> list[dict]:
    return [_ref(n, "parameters") for n in names]


# -- paths -----------------------------------------------------------------------


def _get(summary: str, kind: str, schema: dict, *extra_params: str) -> dict:
    return {
        "summary": summary,
        "parameters": _p("format", "If-None-Match", *extra_params),
        "responses": {
            "200": _ok(summary, _representations(kind, schema), etag=True),
            "304": {"description": "Not modified (If-None-Match named the current revision)."},
            **_errors("403", "404", "406"),
        },
    }


def _project_get() -> dict:
    """GET a project: its record URLs, or with ?q= and ?expand=records the records a query
    selects, as URLs, whole documents or an NDJSON stream (views/search.py)."""
    get = _get("A project and its record URLs; with q, the records a query selects; with "
               "expand=records, whole records", "project",
               {"oneOf": [_ref("Project"), _ref("ExpandedRecords")]},
               "tags", "limit", "cursor", "q", "expand")
    get["responses"]["200"]["content"][NDJSON] = {"schema": _ref("Record")}
    get["responses"]["200"]["description"] += (
        " (application/x-ndjson: every selected record, one JSON document per line)")
    get["responses"].update(_errors("400"))
    return get


def _paths() -> dict[str, Any]:
    project_params = _p("project")
    record_body = {"required": True, "content": _content(sorted(accepted_body_types("record")),
                                                          _ref("RecordPut"))}
    record_out = {rep.media_type: {"schema": _ref("Record")}
                  for rep in offers("record") if not rep.is_html}
    tag_delete = {
        "summary": "Delete every record having the tag",
        "responses": {"200": _ok("The number of records deleted, as text.",
                                 {"text/plain": {"schema": {"type": "string",
                                                            "pattern": r"^[0-9]+$(?!\n)"}}}),
                      **_errors("403", "404")},
    }
    tag_get = _get("The project's records having the tag (with q, those a query selects)",
                   "project", _ref("Project"), "limit", "cursor", "q")
    tag_get["responses"].update(_errors("400"))
    tag_item = {
        "parameters": _p("project", "tag"),
        "get": tag_get,
        "delete": tag_delete,
    }
    html_page = {HTML: {"schema": {"type": "string"}}}
    return {
        "/": {"get": {**_get("The projects the caller may see", "project-list",
                             _ref("ProjectList")), "security": [{}, {"basic": []}]}},
        "/{project}/": {
            "parameters": project_params,
            "get": _project_get(),
            "put": {
                "summary": "Create (201; the caller becomes its admin) or update (200) a project",
                "requestBody": {"required": True, "content": _content(
                    sorted(accepted_body_types("project")), _ref("ProjectPut"))},
                "responses": {"200": _ok("Updated.", {JSON: {"schema": _ref("ProjectInfo")}}),
                              "201": _ok("Created.", {JSON: {"schema": _ref("ProjectInfo")}}),
                              **_errors("403", "415")},
            },
            "delete": {"summary": "Delete a project and its records (project admin)",
                       "responses": {"204": {"description": "Deleted."},
                                     **_errors("403", "404")}},
        },
        "/{project}/{label}/": {
            "parameters": _p("project", "label"),
            "get": _get("One record", "record", _ref("Record")),
            "put": {
                "summary": "Create (201) or update (200) a record",
                "parameters": _p("If-Match"),
                "requestBody": record_body,
                "responses": {"200": _ok("Updated: the stored record.", record_out, etag=True),
                              "201": _ok("Created: the stored record.", record_out, etag=True),
                              **_errors("403", "412", "415")},
            },
            "delete": {"summary": "Delete a record",
                       "parameters": _p("If-Match"),
                       "responses": {"204": {"description": "Deleted."},
                                     **_errors("403", "404", "412")}},
        },
        "/{project}/tag/{tag}/": tag_item,
        "/{project}/tagged/{tag}/": {**tag_item, "description": "The same as tag/."},
        "/{project}/last/": {
            "parameters": project_params,
            "get": _get("The most recent record (by timestamp)", "record", _ref("Record")),
        },
        "/{project}/permissions/": {
            "parameters": project_params,
            "get": {**_get("Who may access the project (authenticated callers only)",
                           "project", _ref("Permissions"))},
            "post": {
                "summary": "Grant a user a role (project admin); browsers are redirected",
                "requestBody": {"required": True, "content": {
                    JSON: {"schema": _ref("Grant")}, FORM: {"schema": _ref("Grant")}}},
                "responses": {"200": _ok("The permissions now.",
                                         {JSON: {"schema": _ref("Permissions")}}),
                              "303": {"description": "A form post: back to the project page."},
                              **_errors("403", "404")},
            },
            "delete": {
                "summary": "Revoke a user's grant (project admin)",
                "parameters": _p("user"),
                "responses": {"200": _ok("The permissions now.",
                                         {JSON: {"schema": _ref("Permissions")}}),
                              **_errors("403", "404")},
            },
        },
        "/_health": {"get": {
            "summary": "Liveness: the process answers", "tags": ["server"], "security": [],
            "responses": {"200": _ok("Alive.", {JSON: {"schema": _ref("Health")}})}}},
        "/_ready": {"get": {
            "summary": "Readiness: storage is reachable", "tags": ["server"], "security": [],
            "responses": {"200": _ok("Ready.", {JSON: {"schema": _ref("Ready")}}),
                          "503": _ok("Storage is down.", {JSON: {"schema": _ref("Ready")}})}}},
        "/_api/": {"get": {
            "summary": "This description as a page for people", "tags": ["server"],
            "security": [], "responses": {"200": _ok("The page.", html_page)}}},
        "/_api/openapi.json": {"get": {
            "summary": "This description", "tags": ["server"], "security": [],
            "responses": {"200": _ok("OpenAPI 3.1.", {JSON: {"schema": {"type": "object"}}})}}},
        "/_login": {
            "get": {"summary": "The login form", "tags": ["browser"], "security": [],
                    "responses": {"200": _ok("The form.", html_page)}},
            "post": {
                "summary": "Log in (form with csrf_token); sets the session cookie",
                "tags": ["browser"], "security": [],
                "requestBody": {"required": True, "content": {FORM: {"schema": {
                    "type": "object", "properties": {
                        "username": {"type": "string"}, "password": {"type": "string"},
                        "next": {"type": "string"}, "csrf_token": {"type": "string"}}}}}},
                "responses": {"303": {"description": "Logged in: to ?next= (this site only)."},
                              **_errors()}},
        },
        "/_login/oidc": {"get": {
            "summary": "Log in with the OpenID Connect provider (when configured): a redirect "
                       "there, with state, nonce and a PKCE challenge kept in the session",
            "tags": ["browser"], "security": [],
            "parameters": [{"name": "next", "in": "query", "required": False,
                            "schema": {"type": "string", "maxLength": 2000}}],
            "responses": {"303": {"description": "To the provider's login page."},
                          **_errors("404", "503")}}},
        "/_login/oidc/callback": {"get": {
            "summary": "Where the provider sends the browser back: checks the state (once), "
                       "exchanges the code, validates the ID token, starts the session",
            "tags": ["browser"], "security": [],
            "parameters": [{"name": n, "in": "query", "required": False,
                            "schema": {"type": "string", "maxLength": 4096}}
                           for n in ("code", "state", "error")],
            "responses": {"303": {"description": "Logged in: to the page the login began on."},
                          "409": {"description": "A local (or directory) user of that "
                                                  "name exists: never taken over."},
                          **_errors("401", "404", "503")}}},
        "/_logout": {"post": {
            "summary": "Log out (form with csrf_token)", "tags": ["browser"], "security": [],
            "responses": {"303": {"description": "Logged out."}, **_errors()}}},
        "/_tokens": {"get": {
            "summary": "Your personal API tokens (name, scope, projects, expiry, last use; "
                       "never a secret); a page, or JSON", "tags": ["browser"],
            "responses": {"200": _ok("The tokens.", {**html_page, JSON: {"schema": {
                "type": "object"}}}), **_errors("403", "404")}}},
        "/_tokens/create": {"post": {
            "summary": "Create a token (form with csrf_token): the answer shows its secret, "
                       "once", "tags": ["browser"],
            "requestBody": {"required": True, "content": {FORM: {"schema": {
                "type": "object", "required": ["csrf_token", "name"], "properties": {
                    name: {"type": "string"} for name in (
                        "csrf_token", "name", "scope", "expires", "projects")}}}}},
            "responses": {"201": _ok("Created: the token, shown only now.", {
                **html_page, JSON: {"schema": {"type": "object"}}}),
                **_errors("403", "404")}}},
        "/_tokens/revoke": {"post": {
            "summary": "Revoke a token (form with csrf_token)", "tags": ["browser"],
            "requestBody": {"required": True, "content": {FORM: {"schema": {
                "type": "object", "required": ["csrf_token", "name"], "properties": {
                    name: {"type": "string"} for name in ("csrf_token", "name")}}}}},
            "responses": {"303": {"description": "Revoked (or why not, as a flash message)."},
                          **_errors("403", "404")}}},
        "/_static/{path}": {"get": {
            "summary": "The UI's own CSS and JavaScript", "tags": ["browser"], "security": [],
            "parameters": [{"name": "path", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The file.",
                                  "content": {"text/css": {}, "text/javascript": {}}},
                          "404": _ref("E404", "responses")}}},
    }


def _form(summary: str, *fields: str, params: tuple[str, ...] = ("project",)) -> dict:
    """A web-interface form: posts with the session's CSRF token, acts, redirects (303)."""
    properties = {name: {"type": "string"} for name in ("csrf_token", *fields)}
    return {
        "parameters": _p(*params),
        "post": {
            "summary": summary, "tags": ["browser"],
            "requestBody": {"required": True, "content": {FORM: {"schema": {
                "type": "object", "required": ["csrf_token"], "properties": properties}}}},
            "responses": {"303": {"description": "Done (or why not, as a flash message): "
                                                 "back to the page."},
                          **_errors("403", "404")},
        },
    }


def _page(summary: str, media_type: str = HTML) -> dict:
    labels = {"name": "labels", "in": "query", "required": False,
              "schema": {"type": "string"}, "description": "Comma-separated record labels."}
    return {
        "parameters": _p("project"),
        "get": {"summary": summary, "tags": ["browser"], "parameters": [labels],
                "responses": {"200": _ok(summary, {media_type: {"schema": {"type": "string"}}}),
                              **_errors("403", "404")}},
    }


def _plotdata() -> dict:
    """``@@plotdata``: the record table's filters, bounded; rows of fields and parameters."""
    from .plotdata import MAX_CURSOR, MAX_RECORDS, MAX_TAGS, MAX_VALUE

    text = {"type": "string", "maxLength": MAX_VALUE}
    date = {"type": "string", "format": "date"}
    query = [
        ("tags", text, f"Comma-separated, at most {MAX_TAGS}: records having any of them."),
        ("q", text, "Label, reason or outcome contains this text."),
        ("user", text, "Recorded by this user."), ("main_file", text, "This main file."),
        ("since", date, "On or after this day (YYYY-MM-DD)."),
        ("until", date, "On or before this day (YYYY-MM-DD)."),
        ("order", {"type": "string", "maxLength": 20}, "An index field, '-' for descending."),
        ("limit", {"type": "integer", "minimum": 1, "maximum": MAX_RECORDS},
         f"Records per response (default and most: {MAX_RECORDS})."),
        ("cursor", {"type": "string", "maxLength": MAX_CURSOR}, "From the previous 'next'."),
    ]
    value = {"type": ["number", "string"]}
    row = {"type": "object", "required": ["label", "timestamp", "tags", "parameters"],
           "properties": {
               "label": {"type": "string"}, "timestamp": {"type": "string"},
               "duration": {"type": ["number", "null"]},
               **{k: {"type": ["string", "null"]} for k in (
                   "repeats", "user", "main_file", "version", "executable", "outcome",
                   "reason")},
               "tags": {"type": "array", "items": {"type": "string"}},
               "parameters": {"type": "object", "additionalProperties": value,
                              "description": "Flattened (dotted names): numbers, and text "
                                             "for categories (booleans as 'true'/'false')."}}}
    kinds = {"type": "object", "additionalProperties": {
        "enum": ["numeric", "categorical", "time"]}}
    body = {"type": "object", "required": ["records", "next", "fields", "parameters"],
            "properties": {
                "project": {"type": "string"}, "count": {"type": "integer"},
                "total": {"type": ["integer", "null"]}, "limit": {"type": "integer"},
                "next": {"type": ["string", "null"],
                         "description": "The next records' URL, or null for the last."},
                "fields": kinds, "parameters": kinds,
                "records": {"type": "array", "items": row}}}
    return {
        "parameters": _p("project"),
        "get": {
            "summary": "Per record of the filter: label, fields and flattened parameters, "
                       "to plot", "tags": ["browser"],
            "parameters": [{"name": name, "in": "query", "required": False, "schema": schema,
                            "description": what} for name, schema, what in query],
            "responses": {"200": _ok("Rows to plot.", {"application/json": {"schema": body}}),
                          **_errors("400", "403", "404")},
        },
    }


def _compare_page(params: tuple[str, ...]) -> dict:
    """The compare page: ``labels`` of this project, or ``records`` of any (project/label)."""
    page = _page("Records side by side")
    page["parameters"] = _p(*params)
    page["get"]["parameters"].append({
        "name": "records", "in": "query", "required": False,
        "schema": {"type": "string", "maxLength": 4000},
        "description": "Comma-separated project/label pairs, at most 12, from any projects "
                       "the caller may read (401/403 otherwise, as for reading each record)."})
    page["get"]["responses"].update(_errors("400", "401"))
    return page


def _browser_paths() -> dict[str, Any]:
    """The web interface's own pages and forms (``@@name`` views on the resources)."""
    record = ("project", "label")
    return {
        "/@@create": _form("Create a project", "id", "name", "description", params=()),
        "/@@compare": _compare_page(()),
        "/{project}/@@compare": _compare_page(("project",)),
        "/{project}/@@parameters": _page("The parameter table"),
        "/{project}/@@plotdata": _plotdata(),
        "/{project}/@@parameters.csv": _page("The parameter table as CSV", "text/csv"),
        "/{project}/@@bulk": _form("Compare, tag, untag or delete the selected records",
                                   "action", "label", "tag"),
        "/{project}/{label}/@@edit": _form("Edit reason, outcome and tags", "reason",
                                           "outcome", "tags", "revision", params=record),
        "/{project}/{label}/@@delete": _form("Delete the record", params=record),
        "/{project}/permissions/@@grant": _form("Grant a role", "user", "role"),
        "/{project}/permissions/@@revoke": _form("Revoke a grant", "user"),
        "/{project}/permissions/@@visibility": _form("Make the project public or private",
                                                     "public"),
    }


def _history_paths() -> dict[str, Any]:
    """History and trash (JSON and HTML on each): ``@@history``, ``@@trash``, ``/_trash``."""
    from .services.history import MAX_LIMIT

    entry = {"type": "object", "required": ["at", "id", "action", "user", "changes"],
             "properties": {
                 "label": {"type": "string"}, "at": {"type": "string"},
                 "id": {"type": "string"}, "action": {"type": "string"},
                 "user": {"type": "string"},
                 "token": {"type": "string", "description": "The API token's name, if one "
                                                            "was used."},
                 "changes": {"type": "object", "description": "Changed top-level fields: "
                             '{"old": value, "new": value}, a side missing when absent.'},
                 "revision_before": {"type": "string"}, "revision_after": {"type": "string"}}}
    page = {"type": "object", "required": ["entries"], "properties": {
        "project": {"type": "string"}, "label": {"type": "string"},
        "entries": {"type": "array", "items": entry},
        "next": {"type": "string", "description": "The next (older) page, when there is one."}}}
    query = [{"name": "limit", "in": "query", "required": False,
              "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
             {"name": "cursor", "in": "query", "required": False,
              "schema": {"type": "string", "maxLength": 64}}]
    revision = {"name": "revision", "in": "query", "required": False,
                "schema": {"type": "string", "maxLength": 64, "pattern": "^[0-9A-Za-z_-]+$"},
                "description": "An earlier revision: the whole record as it was then."}
    both = {JSON: {"schema": page}, HTML: {"schema": {"type": "string"}}}
    item = {"type": "object", "properties": {k: {"type": "string"} for k in (
        "label", "deleted_at", "deleted_by", "timestamp", "revision")}}
    action = {"type": "object", "required": ["action", "deleted_at"], "properties": {
        "action": {"enum": ["restore", "purge"]},
        "label": {"type": "string", "maxLength": 100}, "project": {"type": "string",
                                                                   "maxLength": 100},
        "deleted_at": {"type": "string", "maxLength": 26}, "csrf_token": {"type": "string"}}}
    act_body = {"required": True, "content": {JSON: {"schema": action},
                                              FORM: {"schema": action}}}
    acted = {"200": _ok("Done (JSON clients).", {JSON: {"schema": {"type": "object"}}}),
             "303": {"description": "Done (browsers): back to the page, with a message."},
             **_errors("403", "404", "409")}
    return {
        "/{project}/{label}/@@history": {"parameters": _p("project", "label"), "get": {
            "summary": "A record's history, newest first (or ?revision=: an earlier version)",
            "tags": ["history"], "parameters": [*query, revision],
            "responses": {"200": _ok("History entries, or the earlier document.", both),
                          **_errors("403", "404")}}},
        "/{project}/@@history": {"parameters": _p("project"), "get": {
            "summary": "The project's own history (grants, visibility, description): its "
                       "admins", "tags": ["history"], "parameters": query,
            "responses": {"200": _ok("History entries.", both), **_errors("403", "404")}}},
        "/{project}/@@trash": {"parameters": _p("project"), "get": {
            "summary": "Deleted records (write role)", "tags": ["history"],
            "responses": {"200": _ok("Trashed records.", {
                JSON: {"schema": {"type": "object", "properties": {
                    "records": {"type": "array", "items": item}}}},
                HTML: {"schema": {"type": "string"}}}), **_errors("403", "404")}},
            "post": {"summary": "Restore (write role) or purge (admin) a deleted record",
                     "tags": ["history"], "requestBody": act_body, "responses": acted}},
        "/_trash": {"get": {
            "summary": "Deleted projects: all (server admins) or those the caller "
                       "administered", "tags": ["history"],
            "responses": {"200": _ok("Trashed projects.", {
                JSON: {"schema": {"type": "object", "properties": {
                    "projects": {"type": "array", "items": {"type": "object"}}}}},
                HTML: {"schema": {"type": "string"}}}), **_errors("403")}},
            "post": {"summary": "Restore or purge a deleted project", "tags": ["history"],
                     "requestBody": act_body, "responses": acted}},
    }


def build_description(limits: Limits, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI document; ``server_url`` is where the app is mounted."""
    description = {
        "openapi": "3.1.0",
        "info": {
            "title": "Sumatra Server",
            "version": _version(),
            "summary": "Stores Sumatra provenance records for smt and its HttpRecordStore.",
            "description": (
                "The Sumatra HTTP record-store protocol, API v4 (v3 accepted). Every URL "
                "answers the vendor media types, application/json and text/html; "
                "?format=json|html|v4|v3 overrides Accept, no Accept or */* gets the vendor "
                "v4 type. Anonymous callers read public projects only; a private project "
                "answers 401 with the Basic challenge, 403 to an authenticated user without "
                "a grant, 404 when it does not exist. Every error is JSON "
                '{"error", "detail"} (or an HTML page for browsers). Names starting with '
                "'_' are reserved for the server. Every response carries X-Request-Id."),
        },
        "security": [{"basic": []}, {}],
        "paths": {**_paths(), **_browser_paths(), **_history_paths()},
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic",
                                          "description": f"Realm '{REALM}'."}},
            "schemas": _schemas(limits),
            "parameters": _parameters(),
            "responses": {f"E{code}": _error_response(code) for code in _ERRORS},
        },
    }
    if server_url:
        description["servers"] = [{"url": server_url}]
    _add_request_id(description)
    return description


def _add_request_id(description: dict) -> None:
    header = {"X-Request-Id": {"required": True, "schema": {"type": "string"},
                               "description": "The request's id (the caller's, or new)."}}
    responses = [r for item in description["paths"].values() for op in item.values()
                 if isinstance(op, dict) and "responses" in op
                 for r in op["responses"].values()]
    responses += description["components"]["responses"].values()
    for response in responses:
        if "$ref" not in response:
            response["headers"] = {**response.get("headers", {}), **header}


def default_description() -> dict[str, Any]:
    from . import DEFAULT_SETTINGS

    return build_description(Limits.from_settings(DEFAULT_SETTINGS))


def dumps(description: dict[str, Any]) -> str:
    return json.dumps(description, indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(dumps(default_description()), end="")
