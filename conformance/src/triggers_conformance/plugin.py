"""The pytest plugin (entry point ``pytest11``): options, xfails and the report.

* ``--triggers-backend NAME`` and ``--triggers-option key=value`` (repeatable;
  values are parsed as JSON when they parse) select an installed backend for
  ``pytest --pyargs triggers_conformance``. Without them the environment
  variables ``TRIGGERS_STORAGE_BACKEND`` / ``TRIGGERS_STORAGE_OPTIONS`` are
  used, as everywhere in Triggers.
* ``xfail_tests`` of a :class:`BackendConformance` subclass become strict xfail
  marks on those items.
* At the end of the run, a capability report per backend class: for each
  guarantee, how many of its tests passed, failed, were expected failures, or
  were skipped because the backend does not claim the capability; and one
  line per test server (found, started or missing: see
  :mod:`triggers_conformance.servers`).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Generator
from typing import Any

import pytest

from triggers.registry import BACKEND_ENV, OPTIONS_ENV
from triggers_conformance.guarantees import GUARANTEES, NOT_CLAIMED

Counts = defaultdict[str, defaultdict[str, defaultdict[str, int]]]
"""Outcome counts by backend class, then guarantee, then outcome."""

_RESULTS = pytest.StashKey[Counts]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("triggers", "Triggers storage backend conformance")
    group.addoption("--triggers-backend", metavar="NAME", help="entry-point name of the backend to test")
    group.addoption(
        "--triggers-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option (repeatable); VALUE is parsed as JSON when it parses",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "triggers_guarantee(key, requires=None): conformance test of a guarantee"
    )
    results: Counts = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    config.stash[_RESULTS] = results


def selected_backend(config: pytest.Config) -> tuple[str | None, dict[str, Any]]:
    """The backend name and options chosen on the command line or in the environment."""
    name = config.getoption("--triggers-backend") or os.environ.get(BACKEND_ENV)
    options: dict[str, Any] = {}
    if not config.getoption("--triggers-backend") and os.environ.get(OPTIONS_ENV):
        options.update(json.loads(os.environ[OPTIONS_ENV]))
    for item in config.getoption("--triggers-option"):
        key, separator, raw = item.partition("=")
        if not separator or not key:
            raise pytest.UsageError(f"--triggers-option expects key=value, got {item!r}")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return name, options


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    from triggers_conformance.suite import BackendConformance

    for item in items:
        cls = getattr(item, "cls", None)
        if cls is None or not issubclass(cls, BackendConformance):
            continue
        name = getattr(item, "originalname", item.name)
        reason = cls.xfail_tests.get(name)
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    marker = item.get_closest_marker("triggers_guarantee")
    cls = getattr(item, "cls", None)
    if marker is None or cls is None:
        return report
    outcome = None
    if report.when == "setup" and report.skipped:
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        outcome = "not claimed" if NOT_CLAIMED in reason else "skipped"
    elif report.when == "setup" and report.failed:
        outcome = "error"
    elif report.when == "call":
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        else:
            outcome = report.outcome
    if outcome is not None:
        results = item.config.stash[_RESULTS]
        results[f"{cls.__module__}.{cls.__qualname__}"][marker.args[0]][outcome] += 1
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    from triggers_conformance.servers import REPORT

    if REPORT.lines:
        terminalreporter.section("Triggers test servers")
        for line in sorted(REPORT.lines.values()):
            terminalreporter.write_line(line)
    results = config.stash.get(_RESULTS, None)
    if not results:
        return
    write = terminalreporter.write_line
    terminalreporter.section("Triggers conformance: capability report")
    for backend, guarantees in sorted(results.items()):
        write(backend)
        for key, description in GUARANTEES.items():
            counts = guarantees.get(key)
            if not counts:
                continue
            total = sum(counts.values())
            if counts.get("not claimed") == total:
                verdict = "not claimed"
            elif counts.get("failed") or counts.get("error") or counts.get("xpassed"):
                verdict = "FAILED"
            elif counts.get("passed"):
                verdict = "passed"
            else:
                verdict = "not run"
            detail = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            write(f"  {verdict:<12} {description:<52} ({detail})")
