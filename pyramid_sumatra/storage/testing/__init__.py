"""The storage contract suite, as a pytest plugin: prove a backend before you deploy it.

::

    pip install 'pyramid_sumatra[plugin-testing]' ./my-backend
    pytest -p pyramid_sumatra.storage.testing --sumatra-backend=NAME \\
        --sumatra-backend-setting sumatra.mine.path={tmp_path}/db

``NAME`` is the backend's entry point (group ``pyramid_sumatra.backends``);
``--sumatra-backend-setting KEY=VALUE`` (repeatable) passes settings, ``{tmp_path}``
becoming each test's fresh temporary directory. Without test paths on the command
line the suite's own modules (the ``test_contract_*.py`` beside this file) are run.

A project that runs the suite on several backends of its own overrides the fixtures
``sumatra_settings`` and ``sumatra_backend_name`` in a ``conftest.py`` and puts the
suite's tests in a module with ``globals().update(suite_namespace())``.

When the session ran the whole suite green, it also checks that every storage hook
was called for each backend; a hook never called fails the session, naming it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import transaction

from pyramid_sumatra.storage import Storage
from pyramid_sumatra.storage.hookspecs import OPTIONAL_STORAGE_HOOKS, STORAGE_HOOKS
from pyramid_sumatra.storage.types import ProjectInfo

SUITE_DIR = Path(__file__).parent
SUITE_MODULES = tuple(sorted(f"{__name__}.{path.stem}"
                             for path in SUITE_DIR.glob("test_contract_*.py")))

_called = pytest.StashKey[dict[str, set[str]]]()
#: per backend, the optional hooks it implements (they must be called too)
_optional = pytest.StashKey[dict[str, set[str]]]()
_complete = pytest.StashKey[bool]()
_test_hooks = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sumatra", "Sumatra Server storage contract suite")
    group.addoption("--sumatra-backend", default="", metavar="NAME",
                    help="run the storage contract suite against the backend plugin NAME "
                         "(an entry point of group pyramid_sumatra.backends)")
    group.addoption("--sumatra-backend-setting", action="append", default=[],
                    metavar="KEY=VALUE",
                    help="a setting for --sumatra-backend (repeatable); '{tmp_path}' in "
                         "VALUE becomes the test's temporary directory")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_called] = {}
    config.stash[_optional] = {}
    config.stash[_complete] = False
    if config.getoption("--sumatra-backend"):
        backend_settings(config, Path("."))  # a malformed KEY=VALUE fails before collection
        if config.args_source != pytest.Config.ArgsSource.ARGS:
            config.args[:] = [str(SUITE_DIR)]


def backend_settings(config: pytest.Config, tmp_path: Path) -> dict[str, Any]:
    """The settings ``--sumatra-backend`` and ``--sumatra-backend-setting`` describe."""
    pairs = [s.partition("=") for s in config.getoption("--sumatra-backend-setting")]
    bad = [key for key, sep, _ in pairs if not sep]
    if bad:
        raise pytest.UsageError(f"--sumatra-backend-setting needs KEY=VALUE, got {bad}")
    settings = {key: value.replace("{tmp_path}", str(tmp_path)) for key, _, value in pairs}
    return {**settings, "sumatra.backend": config.getoption("--sumatra-backend")}


def suite_namespace() -> dict[str, Any]:
    """The public names of every suite module (tests, fixtures, helpers), to put in a
    module of one's own: pytest collects the tests there, with the project's fixtures."""
    namespace: dict[str, Any] = {}
    for name in SUITE_MODULES:
        for attr, value in vars(importlib.import_module(name)).items():
            if attr.startswith("_"):
                continue
            if namespace.setdefault(attr, value) is not value:
                raise RuntimeError(f"two contract suite modules define {attr!r}")
    return namespace


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture
def sumatra_backend_name(request: pytest.FixtureRequest) -> str:
    """The backend's name in reports (override it when running several backends)."""
    return request.config.getoption("--sumatra-backend")


@pytest.fixture
def sumatra_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """App settings selecting the backend under test, on a fresh store for each test."""
    if not request.config.getoption("--sumatra-backend"):
        pytest.fail("the contract suite needs --sumatra-backend=NAME (or a conftest.py "
                    "overriding the sumatra_settings fixture)", pytrace=False)
    return backend_settings(request.config, tmp_path)


@pytest.fixture
def store(request: pytest.FixtureRequest, sumatra_settings: dict[str, Any],
          sumatra_backend_name: str) -> Iterator[Storage]:
    """The storage facade over the backend, initialised; every hook it calls is noted."""
    from pyramid_sumatra import build_storage, resolve_settings

    storage = build_storage(resolve_settings(sumatra_settings))
    called = request.config.stash[_called].setdefault(sumatra_backend_name, set())
    in_this_test = request.node.stash.setdefault(_test_hooks, [])

    request.config.stash[_optional].setdefault(sumatra_backend_name, {
        hook for hook in OPTIONAL_STORAGE_HOOKS if storage.implements(hook)})

    def note(hook_name: str, impls, kwargs) -> None:
        called.add(hook_name)
        if (hook_name in STORAGE_HOOKS or hook_name in OPTIONAL_STORAGE_HOOKS) \
                and hook_name not in in_this_test:
            in_this_test.append(hook_name)

    undo = storage.pm.add_hookcall_monitoring(note, lambda *args: None)
    storage.initialize()
    try:
        yield storage
    finally:
        storage.dispose()
        undo()


@pytest.fixture
def project(store: Storage) -> str:
    """A committed, empty project ``P``."""
    with transaction.manager:
        store.put_project(ProjectInfo(id="P", name="Project P", description="for tests"))
    return "P"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed contract test names the storage hooks it called, in order: the culprit
    is among them (usually the first write or the read its assertion is about)."""
    report = yield
    hooks = item.stash.get(_test_hooks, None)
    if report.failed and hooks:
        report.sections.append(("storage hooks this test called", ", ".join(hooks)))
    return report


# -- every hook called: checked at the end, whatever order the tests ran in ------------


def uncalled_hooks(called: dict[str, set[str]],
                   optional: dict[str, set[str]] | None = None) -> dict[str, list[str]]:
    """For each backend, the storage hooks the suite never called on it (none: omitted):
    the required ones, and the optional ones the backend implements (``optional``)."""
    optional = optional or {}
    missing = {name: [hook for hook in (*STORAGE_HOOKS, *OPTIONAL_STORAGE_HOOKS)
                      if hook not in hooks and (hook in STORAGE_HOOKS
                                                or hook in optional.get(name, ()))]
               for name, hooks in called.items()}
    return {name: hooks for name, hooks in missing.items() if hooks}


def pytest_collection_finish(session: pytest.Session) -> None:
    """The check is meaningful only if every test of the suite was selected."""
    expected = {(name, attr) for name in SUITE_MODULES
                for attr in vars(importlib.import_module(name)) if attr.startswith("test_")}
    selected = {(item.function.__module__, item.function.__name__)
                for item in session.items if hasattr(item, "function")}
    session.config.stash[_complete] = expected <= selected


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not config.stash.get(_complete, False) or exitstatus != 0:
        return
    called = config.stash[_called]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    missing = uncalled_hooks(called, config.stash[_optional])
    for name, hooks in missing.items():
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep("=", f"contract suite: storage hooks never called for {name}: "
                                    f"{', '.join(hooks)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not missing and reporter is not None and called:
        reporter.write_line(f"contract suite: every storage hook was called for "
                            f"{', '.join(sorted(called))}")
