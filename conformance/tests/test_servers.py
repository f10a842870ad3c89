"""The test-server helper: found, started and stopped, or missing (skip vs CI fail)."""

from __future__ import annotations

import socket
import sys

import pytest

from triggers_conformance import servers
from triggers_conformance.servers import Server, port_answers, serve


@pytest.fixture(autouse=True)
def private_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep these made-up servers out of the run's real server summary."""
    monkeypatch.setattr(servers, "REPORT", servers.Report())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_starts_a_server_that_is_not_running_and_stops_it_afterwards() -> None:
    port = free_port()
    http = Server(
        name="http-test",
        host="127.0.0.1",
        port=port,
        command=[sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
    )
    assert not port_answers("127.0.0.1", port)
    with serve(http):
        assert port_answers("127.0.0.1", port)
        assert "started by the tests" in servers.REPORT.lines["http-test"]
    assert not port_answers("127.0.0.1", port)


def test_a_missing_server_is_skipped_outside_ci_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "")
    ghost = Server(
        "ghost",
        "127.0.0.1",
        free_port(),
        command=["no-such-program-x"],
        install="apt-get install ghost",
    )
    with (
        pytest.raises(
            pytest.skip.Exception,
            match=r"ghost .*'no-such-program-x' is not installed.*apt-get install ghost",
        ),
        serve(ghost),
    ):
        pass


def test_a_missing_server_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    ghost = Server("ghost", "127.0.0.1", free_port())
    with pytest.raises(pytest.fail.Exception, match="CI=true and ghost"), serve(ghost):
        pass


def test_a_server_that_exits_at_once_is_reported_with_its_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "")
    crash = Server(
        "crash",
        "127.0.0.1",
        free_port(),
        command=[sys.executable, "-c", "import sys; print('bad flag'); sys.exit(3)"],
    )
    with pytest.raises(pytest.skip.Exception, match="exited with status 3: bad flag"), serve(crash):
        pass
