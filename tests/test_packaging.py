"""Every distribution of the workspace ships what a package index and its users need.

Each member (``packages/*`` and ``conformance``) is released on its own, so
each must carry its license, its metadata and dependency bounds, and a long
description that makes sense on its own. New packages are picked up by the
glob: a package that forgets one of these fails here, not on PyPI.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = sorted([*ROOT.glob("packages/*/pyproject.toml"), ROOT / "conformance" / "pyproject.toml"])
PYTHONS = ("3.11", "3.12", "3.13")


def _project(pyproject: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads(pyproject.read_text())["project"]
    return project


@pytest.fixture(params=MEMBERS, ids=lambda path: path.parent.name)
def member(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


def test_the_repository_has_a_license() -> None:
    assert (ROOT / "LICENSE").is_file()


def test_each_distribution_carries_the_license(member: Path) -> None:
    project = _project(member)
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    copy = member.parent / "LICENSE"
    assert copy.is_file(), f"{copy} is missing: the wheel and sdist would ship no license"
    assert copy.read_text() == (ROOT / "LICENSE").read_text()


def test_each_distribution_has_index_metadata(member: Path) -> None:
    project = _project(member)
    for key in ("name", "version", "description", "readme", "requires-python", "authors", "keywords"):
        assert project.get(key), f"{member}: [project] {key} is missing"
    classifiers = set(project["classifiers"])
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    for python in PYTHONS:
        assert f"Programming Language :: Python :: {python}" in classifiers
    typed = any(member.parent.glob("src/*/py.typed"))
    assert ("Typing :: Typed" in classifiers) == typed
    depends_on_django = any(Requirement(r).name.lower() == "django" for r in project["dependencies"])
    assert ("Framework :: Django" in classifiers) == depends_on_django


def test_dependencies_are_bounded_above(member: Path) -> None:
    """A dependency's next major release may break us, so none is open-ended."""
    project = _project(member)
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    unbounded = [
        text for text in requirements
        if not any(spec.operator in ("<", "<=", "==", "~=") for spec in Requirement(text).specifier)
    ]
    assert unbounded == [], f"{member}: no upper bound on {unbounded}"


def test_the_long_description_links_only_inside_the_distribution(member: Path) -> None:
    readme = member.parent / _project(member)["readme"]
    for target in re.findall(r"\]\(([^)\s]+)\)", readme.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        resolved = (readme.parent / target.split("#", 1)[0]).resolve()
        assert resolved.is_relative_to(member.parent) and resolved.exists(), (
            f"{readme.relative_to(ROOT)} links to {target}, which the distribution does not hold"
        )
