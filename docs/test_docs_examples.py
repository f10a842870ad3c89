"""Every ```python block of the documentation runs, as written, in CI.

The blocks of one page run in order as one script (a later block may use what
an earlier one defined), as ``__main__`` in a fresh interpreter whose working
directory is a temporary folder, so ``run`` paths like ``__main__.my_task``
resolve and SQLite files land nowhere else. An example that stops working
fails its page here; examples check their own results with ``assert``.

A block may include a file, or a section of one, the way the site does
(``--8<-- "docs/examples/x.py:section"``, pymdownx.snippets); it runs with
that text in place. Pages that only include a package README (``--8<--``) are not scanned here:
those READMEs belong to their packages, and the root README's quick start is
run by ``examples/test_readme_quick_start.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent  # the snippets' base_path in mkdocs.yml
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
# A fenced block that does not start at column 0 (inside a list, an admonition
# or tabs) would escape PYTHON_BLOCK; such blocks are refused, not skipped.
INDENTED_PYTHON_FENCE = re.compile(r"^[ \t]+```\s*py", re.MULTILINE)
SNIPPET_LINE = re.compile(r'^--8<-- "([^"]+)"$', re.MULTILINE)
SECTION_MARKER = re.compile(r"--8<-- \[(start|end):([\w-]+)\]")


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def snippet(reference: str) -> str:
    """The text ``--8<-- "path[:section]"`` stands for, as pymdownx.snippets reads it."""
    path, _, section = reference.partition(":")
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    if section:
        markers = [(i, m.groups()) for i, line in enumerate(lines) if (m := SECTION_MARKER.search(line))]
        start = next(i for i, found in markers if found == ("start", section))
        end = next(i for i, found in markers if found == ("end", section))
        lines = lines[start + 1 : end]
    return "\n".join(line for line in lines if not SECTION_MARKER.search(line)) + "\n"


def python_blocks(page: Path) -> list[str]:
    blocks = PYTHON_BLOCK.findall(page.read_text(encoding="utf-8"))
    return [SNIPPET_LINE.sub(lambda match: snippet(match.group(1)), block) for block in blocks]


def page_id(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


PAGES_WITH_CODE = [page for page in pages() if python_blocks(page)]


def test_the_pages_that_teach_by_example_have_examples() -> None:
    # Guards the extraction itself: if the pattern stopped matching, every
    # page would silently pass with nothing run.
    have_code = {page_id(page) for page in PAGES_WITH_CODE}
    expected = {"concepts.md", "configuration.md", "manager.md", "runners.md", "storage.md"}
    assert expected <= have_code, f"pages without python examples: {sorted(expected - have_code)}"


@pytest.mark.parametrize("page", pages(), ids=page_id)
def test_no_python_block_hides_from_this_test(page: Path) -> None:
    hidden = INDENTED_PYTHON_FENCE.findall(page.read_text(encoding="utf-8"))
    assert not hidden, f"{page_id(page)}: python blocks must start at column 0 to be run in CI"


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=page_id)
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    script = tmp_path / f"{page.stem}_examples.py"
    script.write_text("\n\n".join(python_blocks(page)), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, script.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{page_id(page)}: an example failed\n{result.stderr}"
