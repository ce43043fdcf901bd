"""The contract suite shipped in pyramid_sumatra.storage.testing, collected here so that it
runs on every backend of tests/conftest.py (``--backends`` narrows them)."""

from pyramid_sumatra.storage.testing import suite_namespace

globals().update(suite_namespace())
