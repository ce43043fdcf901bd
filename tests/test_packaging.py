"""The wheel ships every package: pyproject.toml lists packages by hand (backends/ installs
as pyramid_sumatra_backends), so a new package folder left off the list would be missing
from the wheel, and the app would not import from it (as pyramid_sumatra.services was)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed_in_pyproject():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"pyramid_sumatra": "pyramid_sumatra", **setuptools["package-dir"]}
    found = {".".join([name, *init.parent.relative_to(ROOT / folder).parts])
             for name, folder in folders.items()
             for init in (ROOT / folder).rglob("__init__.py")}
    assert "pyramid_sumatra.services" in found
    assert sorted(found - set(setuptools["packages"])) == []
