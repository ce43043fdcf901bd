"""The plugin kit from the outside: wheels installed into a fresh virtualenv, no checkout.

This project's wheel and the memory example's are built once per session and installed
(dependencies from the package index or pip's cache) into a new virtualenv; the
contract suite shipped in the wheel then runs from an empty directory, as an
institution would run it against its own plugin: the example passes, and a copy of it
broken on purpose fails, naming the hook.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import unavailable

ROOT = Path(__file__).resolve().parent.parent
MEMORY = ROOT / "examples" / "sumatra-memory-backend"
#: What the wheel is built from (a copy: the build writes build/ and *.egg-info).
SOURCES = ("pyproject.toml", "README.md", "pyramid_sumatra", "backends")

pytestmark = pytest.mark.dist


def run(*command: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def pip(python: Path, *args: str | Path, cwd: Path) -> None:
    done = run(python, "-m", "pip", "--disable-pip-version-check", *args, cwd=cwd)
    if done.returncode != 0:
        unavailable(f"pip {' '.join(map(str, args[:2]))} failed: {done.stderr[-1500:]}")


def build_wheel(source: Path, out: Path, work: Path) -> Path:
    pip(Path(sys.executable), "wheel", "--no-deps", "-q", "-w", out, source, cwd=work)
    return max(out.glob("*.whl"), key=lambda p: p.stat().st_mtime)


@dataclass
class Installed:
    python: Path
    site: Path
    wheels: Path
    work: Path

    def contract(self, backend: str) -> subprocess.CompletedProcess:
        """The shipped suite against ``backend``, from an empty directory."""
        cwd = self.work / f"run-{backend}"
        cwd.mkdir()
        return run(self.python, "-m", "pytest", "-p", "pyramid_sumatra.storage.testing",
                   f"--sumatra-backend={backend}", "-q", "-rf", "-p", "no:cacheprovider",
                   cwd=cwd)


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Installed:
    """This project's wheel (with [plugin-testing]) and the memory example's, in a new venv."""
    work = tmp_path_factory.mktemp("kit")
    source, wheels = work / "source", work / "wheels"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **(
            {"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    kit = build_wheel(source, wheels, work)
    memory = build_wheel(MEMORY, wheels, work)
    env = work / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    # Both wheels from here, never from an index; their dependencies from the index.
    pip(python, "install", "-q", "--find-links", wheels, f"{kit}[plugin-testing]", memory,
        cwd=work)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                    cwd=work).stdout.strip())
    return Installed(python, site, wheels, work)


def test_the_wheel_installs_the_backends_under_the_project_namespace(installed):
    site = installed.site
    assert not (site / "backends").exists()
    assert (site / "pyramid_sumatra_backends" / "sqlalchemy" / "alembic.ini").is_file()
    assert list((site / "pyramid_sumatra_backends" / "sqlalchemy" / "migrations"
                 / "versions").glob("0001_*.py"))
    assert (site / "pyramid_sumatra" / "storage" / "testing" / "data" /
            "example_0.7.json").is_file()
    done = run(installed.python, "-c", "import pyramid_sumatra, pyramid_sumatra_backends."
               "sqlalchemy, sumatra_memory_backend; print(pyramid_sumatra.__file__)",
               cwd=installed.work)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(site)  # not the checkout


def test_the_shipped_suite_passes_the_memory_backend(installed):
    done = installed.contract("memory")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", done.stdout).group(1))
    assert passed >= 90 and "failed" not in done.stdout.splitlines()[-1]
    assert "every storage hook was called for memory" in done.stdout


#: The memory example, broken on purpose: a replaced record loses its tags.
BROKEN = ("tags=sorted(dict.fromkeys(record.tags)))",
          "tags=[] if existed else sorted(dict.fromkeys(record.tags)))")


def test_a_broken_copy_of_the_plugin_fails_naming_the_hook(installed):
    copy = installed.work / "broken"
    shutil.copytree(MEMORY, copy, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    (copy / "sumatra_memory_backend").rename(copy / "sumatra_broken_backend")
    module = copy / "sumatra_broken_backend" / "__init__.py"
    source = module.read_text()
    assert BROKEN[0] in source  # the example still has the line this test breaks
    module.write_text(source.replace(*BROKEN))
    project = copy / "pyproject.toml"
    project.write_text(project.read_text()
                       .replace('name = "sumatra-memory-backend"', 'name = "sumatra-broken"')
                       .replace('memory = "sumatra_memory_backend:', 'broken = "sumatra_broken_'
                                'backend:')
                       .replace('packages = ["sumatra_memory_backend"]',
                                'packages = ["sumatra_broken_backend"]'))
    broken = build_wheel(copy, installed.work / "broken-wheel", installed.work)
    pip(installed.python, "install", "-q", "--no-deps", "--no-index", broken, cwd=installed.work)

    done = installed.contract("broken")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    failed = re.findall(r"^FAILED \S+::(\w+)", done.stdout, re.MULTILINE)
    assert "test_replace_updates_body_index_fields_and_tags" in failed, done.stdout[-3000:]
    assert "AssertionError: sumatra_put_record(create=False) must store the tags" in done.stdout
    assert "storage hooks this test called" in done.stdout
