"""One app over SQLite with the demo data, with settings overridden per test.

For tests of behaviour above storage (limits, headers, throttling), which need
not run once per backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import transaction
import webtest
from conftest import BACKENDS

import pyramid_sumatra
from pyramid_sumatra.demo import load_demo


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator:
    made = []

    def make(**overrides: str) -> webtest.TestApp:
        settings, _ = BACKENDS["sqlite"](tmp_path / f"app{len(made)}")
        settings = {**settings, "sumatra.initdb": "true", "sumatra.secret": "x" * 32,
                    **overrides}
        app = pyramid_sumatra.main({}, **settings)
        with transaction.manager:
            load_demo(app.registry["sumatra.storage"])
        made.append(app)
        return webtest.TestApp(app)

    yield make
    for app in made:
        app.registry["sumatra.storage"].dispose()
