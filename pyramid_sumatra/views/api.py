"""``/_api/openapi.json`` (the OpenAPI description) and ``/_api/`` (the same, for people)."""

from __future__ import annotations

from pyramid.request import Request
from pyramid.view import view_config

from ..limits import record_limits
from ..openapi import build_description

_METHODS = ("get", "put", "post", "delete")


def description_for(request: Request) -> dict:
    """The description with this deployment's limits and mount point."""
    return build_description(record_limits(request), server_url=request.application_url)


@view_config(route_name="api_description", request_method="GET", renderer="json")
def api_description(request: Request):
    return description_for(request)


def operations(description: dict) -> list[dict]:
    """Flat rows for the page: path, method, summary, parameters, bodies, statuses."""
    components = description["components"]
    rows = []
    for path, item in description["paths"].items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [_resolve(p, components)["name"]
                      for p in item.get("parameters", []) + op.get("parameters", [])]
            responses = {code: _resolve(r, components).get("description", "")
                         for code, r in op["responses"].items()}
            ok = [r for code, r in op["responses"].items() if code.startswith("2")]
            rows.append({
                "path": path, "method": method.upper(), "summary": op.get("summary", ""),
                "parameters": params,
                "request_types": sorted(op.get("requestBody", {}).get("content", {})),
                "response_types": sorted({t for r in ok for t in r.get("content", {})}),
                "responses": responses,
            })
    return rows


def _resolve(obj: dict, components: dict) -> dict:
    if "$ref" in obj:
        _, _, kind, name = obj["$ref"].split("/")
        return components[kind][name]
    return obj


@view_config(route_name="api_page", request_method="GET", renderer="api.html")
def api_page(request: Request):
    description = description_for(request)
    return {"info": description["info"], "operations": operations(description),
            "errors": description["components"]["responses"],
            "description_url": request.route_url("api_description")}


def includeme(config) -> None:
    config.add_route("api_page", "/_api/")
    config.add_route("api_description", "/_api/openapi.json")
