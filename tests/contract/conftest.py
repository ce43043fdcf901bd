"""The shipped contract suite on every built-in backend: tests/conftest.py's ``backend_name``."""

from __future__ import annotations

import pytest


@pytest.fixture
def sumatra_backend_name(backend_name: str) -> str:
    return backend_name


@pytest.fixture
def sumatra_settings(app_settings: dict) -> dict:
    return app_settings
