"""The repository stands on its own: no link, message or doc points outside it.

A user reads the README, the package READMEs (also shown on PyPI) and the
error messages on a machine that has only this repository, so a relative
Markdown link must resolve to a file inside it, and no tracked file may name
a path of the machine it was written on.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Built from parts so that this file does not match itself.
MACHINE_PATHS = ["/" + "work/", "../" + "shared/"]

LINK = re.compile(r"\]\(([^)\s]+)\)")


def _tracked(*suffixes: str) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout.split("\0")
    return [ROOT / name for name in listed if name and name.endswith(suffixes)]


def test_no_tracked_file_names_a_path_outside_the_repository() -> None:
    offenders = []
    for path in _tracked(".md", ".py", ".toml", ".yml", ".yaml", ".sh", ".cfg", "run", "install"):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        offenders += [
            f"{path.relative_to(ROOT)}: {needle!r}" for needle in MACHINE_PATHS if needle in text
        ]
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "markdown", _tracked(".md"), ids=lambda path: str(path.relative_to(ROOT))
)
def test_relative_markdown_links_resolve_inside_the_repository(markdown: Path) -> None:
    broken = []
    for target in LINK.findall(markdown.read_text(errors="replace")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (http:, mailto:) or an anchor on the same page
        resolved = (markdown.parent / target.split("#", 1)[0]).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{markdown.relative_to(ROOT)} links outside the repository or to nothing: {broken}"


def test_the_site_loads_its_scripts_from_the_site_itself() -> None:
    """Mermaid (and any other script) is served with the site, never from a CDN.

    mkdocs does not check that ``extra_javascript`` files exist, so a renamed
    file would silently bring back Material's download from unpkg.
    """
    config = (ROOT / "mkdocs.yml").read_text()
    section = config.split("extra_javascript:", 1)[1].split("\n\n", 1)[0]
    scripts = re.findall(r"^\s+-\s+(\S+)", section, flags=re.MULTILINE)
    assert any("mermaid" in script for script in scripts), scripts
    for script in scripts:
        assert "://" not in script, f"{script} is loaded from another host"
        assert (ROOT / "docs" / script).is_file(), f"mkdocs.yml loads {script}, which docs/ lacks"
