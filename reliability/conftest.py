"""The reliability suite's options, targets, servers and end-of-run figures.

``--soak [SECONDS]`` (default 600 when given without a number) turns the
short run into a soak run bounded by SECONDS of wall-clock time, shared evenly
by the selected reliability tests (see ``triggers_reliability.scale``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from triggers_reliability.figures import FIGURES
from triggers_reliability.private_servers import (
    PRIVATE_SERVERS,
    PrivateServer,
    memcached,
    moto,
    secantus,
)
from triggers_reliability.scale import Scale
from triggers_reliability.targets import (
    MYSQL_URL,
    POSTGRESQL_URL,
    REDIS_URL,
    TARGETS,
    Target,
)

from triggers_conformance import catalogue
from triggers_conformance.servers import Server, serve

HERE = Path(__file__).parent
DEFAULT_SOAK_SECONDS = 600.0
_SHARE = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        nargs="?",
        type=float,
        const=DEFAULT_SOAK_SECONDS,
        default=None,
        metavar="SECONDS",
        help="run the reliability suite as a soak test bounded by SECONDS of wall-clock "
        f"time (default {DEFAULT_SOAK_SECONDS:g}), instead of its short run",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        metafunc.parametrize("target", TARGETS, ids=str)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function) or not hasattr(item, "callspec"):
            continue
        target = item.callspec.params.get("target")
        if isinstance(target, Target) and item.originalname in target.known_failures:
            reason = target.known_failures[item.originalname]
            # Skipped, not run as xfail: the failure can leave the server unusable
            # for the tests after it.
            item.add_marker(pytest.mark.skip(reason=f"known failure on {target}: {reason}"))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    _share_the_soak(session.config, session.items)


def _share_the_soak(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each reliability test that will run an even share of the ``--soak`` budget.

    Counted once collection is final, after ``-k``/``-m`` deselection and
    without the tests skipped as known failures, so ``--soak 600 -k load``
    gives the load tests all 600 seconds.
    """
    seconds = config.getoption("--soak")
    if seconds is None:
        return
    ours = [
        item for item in items
        if HERE in Path(str(item.path)).parents and item.get_closest_marker("skip") is None
    ]
    for item in ours:
        item.stash[_SHARE] = seconds / len(ours)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = FIGURES.table()
    if lines:
        terminalreporter.section("reliability figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def scale(request: pytest.FixtureRequest) -> Scale:
    """How much work this test does (its share of the soak budget, if any)."""
    return Scale(request.node.stash.get(_SHARE, None))


# -- shared servers ----------------------------------------------------------------


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[str]:
    with serve(catalogue.postgresql(POSTGRESQL_URL)):
        yield POSTGRESQL_URL


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[str]:
    with serve(catalogue.mariadb(MYSQL_URL)):
        yield MYSQL_URL


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    with serve(Server("Redis", "127.0.0.1", 6379, install="set TRIGGERS_CACHE_REDIS_URL")):
        yield REDIS_URL


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[str]:
    """A memcached of the suite's own.

    Not the usual 127.0.0.1:11211: that one is started and stopped by
    whichever test run found it missing, and may vanish in the middle of ours.
    """
    server = memcached()
    try:
        server.start()
        yield server.endpoint
    finally:
        server.close()


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[str]:
    """A SecantusDB of the suite's own (the usual 27018 one comes and goes with other runs)."""
    server = secantus()
    try:
        server.start()
        yield server.endpoint
    finally:
        server.close()


@pytest.fixture(scope="session")
def dynamodb_server() -> Iterator[str]:
    """A moto server of the suite's own (the usual one comes and goes with other runs)."""
    server = moto()
    try:
        server.start()
        yield server.endpoint
    finally:
        server.close()


# -- stores ---------------------------------------------------------------------------


@pytest.fixture
def endpoint(request: pytest.FixtureRequest, target: Target) -> str:
    """Where ``target``'s shared server is (``"sqlite"`` for the file target)."""
    if target.server is None:
        return "sqlite"
    value: str = request.getfixturevalue(target.server)
    return value


@pytest.fixture
def store(target: Target, endpoint: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Backend options for a fresh, private store of ``target`` on its shared server."""
    with target.open(endpoint, tmp_path) as options:
        yield options


@pytest.fixture(scope="session")
def private_servers() -> Iterator[dict[str, PrivateServer]]:
    """Private server instances, made on first use by kind, removed at the end."""
    made: dict[str, PrivateServer] = {}
    yield made
    for server in made.values():
        server.close()


@pytest.fixture
def private_server(target: Target, private_servers: dict[str, PrivateServer]) -> PrivateServer:
    """A running private server of ``target``'s kind, which the test may stop and start."""
    if target.private is None:
        pytest.skip(f"{target.name}: no server process of its own to restart")
    server = private_servers.get(target.private)
    if server is None:
        server = private_servers[target.private] = PRIVATE_SERVERS[target.private]()
    server.start()
    return server
