"""The rules of the domain, each in one function, shared by every entry point.

The JSON views, the HTML forms, the ``sumatra-server`` CLI and the demo loader
all change state through these modules (records, projects, grants, users).

What belongs in a service: a rule about what may be stored (names, validation,
limits, the second-PUT merge, who keeps admin of a project), taking the
``Storage`` facade and plain values, and raising a ``services.errors.ServiceError``
when the rule refuses. A service knows nothing of HTTP, requests or sessions.

What belongs in a view: parsing the request (body, media type, form fields),
HTTP preconditions (If-Match, If-None-Match, ETags), content negotiation,
rendering, and turning a ``ServiceError`` into a status code (``views.http_error``)
or a flash message. The CLI turns one into a ``CommandError``.

This package imports nothing at load time, so ``records.py`` can take its error
class from ``services.errors`` without an import cycle.
"""
