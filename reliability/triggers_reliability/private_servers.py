"""Private server instances that the restart scenario may stop, crash and start again.

The machine's shared servers (PostgreSQL 5432, MariaDB 3306, Redis 6379) serve
every developer's tests, so the suite never restarts them. It starts its own
instances instead, each on a free port with its data in a temporary folder,
and stops them by the PID it recorded. A missing program skips the scenario
(fails it under ``CI=true``) through :func:`triggers_conformance.servers.missing`.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from triggers_conformance import catalogue
from triggers_conformance.servers import Server, missing

__all__ = ["PRIVATE_SERVERS", "PrivateServer", "free_port", "memcached_command"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PrivateServer:
    """One server process owned by the suite.

    ``stop()`` shuts it down cleanly (``stop_signal``); ``crash()`` kills it
    the way a power cut or an OOM kill would (``crash_signal``), so the next
    ``start()`` must recover from its files. ``endpoint`` is what a target
    needs to reach it (a database URL, a cache LOCATION).
    """

    name: str
    port: int
    endpoint: str
    command: Sequence[str]
    ready: Callable[[], bool]
    directory: Path
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    crash_signal: int = signal.SIGKILL
    startup_timeout: float = 60.0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.directory / f"server-{self.port}.log"

    def answers(self) -> bool:
        try:
            return self.ready()
        except Exception:
            return False

    def start(self) -> None:
        """Start the server and wait until it answers (raises if it never does)."""
        if self.process is not None and self.process.poll() is None:
            return
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                list(self.command),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                user=self.user,
            )
        deadline = time.monotonic() + self.startup_timeout
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}); see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer within {self.startup_timeout} s")
            time.sleep(0.05)
        self.starts += 1

    def stop(self) -> None:
        """Shut the server down cleanly and wait for its process to end."""
        self._end(self.stop_signal)

    def crash(self) -> None:
        """Kill the server abruptly: it must recover from its files on the next start."""
        self._end(self.crash_signal)

    def _end(self, signal_number: int) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal_number)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def close(self) -> None:
        """Stop the server and remove its files."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _program(server_name: str, *candidates: str) -> str:
    """The first installed program among ``candidates`` (names or globs), or skip."""
    for candidate in candidates:
        found = sorted(glob.glob(candidate)) if "*" in candidate else [shutil.which(candidate)]
        if found and found[-1]:
            return str(found[-1])
    missing(
        Server(f"private {server_name}", "127.0.0.1", 0, install="the Debian packages postgresql, mariadb-server, redis-server and memcached, and secantusdb from PyPI, provide them; .ci/install installs memcached"),
        f"none of {', '.join(candidates)} is installed",
    )
    raise AssertionError("unreachable")  # missing() skips or fails


def _directory(kind: str) -> Path:
    """A new folder for one server's data and log, readable by the server's user."""
    directory = Path(tempfile.mkdtemp(prefix=f"triggers-reliability-{kind}-"))
    directory.chmod(0o755)
    return directory


def postgresql() -> PrivateServer:
    """A fresh PostgreSQL cluster (initdb), run as user ``postgres`` when we are root."""
    postgres = _program("PostgreSQL", "/usr/lib/postgresql/*/bin/postgres", "postgres")
    initdb = str(Path(postgres).with_name("initdb"))
    user = "postgres" if os.geteuid() == 0 else None
    directory = _directory("postgresql")
    data = directory / "data"
    if user is not None:
        shutil.chown(directory, user)
    subprocess.run(
        [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"],
        check=True, capture_output=True, user=user,
    )
    port = free_port()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    return PrivateServer(
        name="private PostgreSQL",
        port=port,
        endpoint=url,
        command=[postgres, "-D", str(data), "-c", "listen_addresses=127.0.0.1",
                 "-p", str(port), "-k", str(directory), "-c", "fsync=on"],
        ready=lambda: catalogue.sql_answers(url),
        directory=directory,
        user=user,
        stop_signal=signal.SIGINT,  # "fast" shutdown: ends the sessions, then stops
        crash_signal=signal.SIGQUIT,  # "immediate": no checkpoint, WAL recovery on start
    )


def mariadb() -> PrivateServer:
    """A fresh MariaDB data directory (mariadb-install-db) served by ``mariadbd``."""
    mariadbd = _program("MariaDB", "mariadbd", "/usr/sbin/mariadbd")
    install = _program("MariaDB", "mariadb-install-db")
    directory = _directory("mariadb")
    data = directory / "data"
    subprocess.run(
        [install, "--no-defaults", "--user=root", f"--datadir={data}", "--auth-root-authentication-method=normal",
         "--skip-test-db"],
        check=True, capture_output=True,
    )
    port = free_port()
    url = f"mysql+pymysql://root@127.0.0.1:{port}/mysql"
    return PrivateServer(
        name="private MariaDB",
        port=port,
        endpoint=url,
        command=[mariadbd, "--no-defaults", "--user=root", f"--datadir={data}",
                 "--bind-address=127.0.0.1", f"--port={port}", f"--socket={directory}/mariadb.sock",
                 f"--pid-file={directory}/mariadb.pid", "--skip-log-bin"],
        ready=lambda: catalogue.sql_answers(url),
        directory=directory,
    )


def redis() -> PrivateServer:
    """Redis without persistence, as the shared one runs: a restart empties it."""
    program = _program("Redis", "redis-server")
    directory = _directory("redis")
    port = free_port()

    def ready() -> bool:
        import redis as client

        return bool(client.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())

    return PrivateServer(
        name="private Redis",
        port=port,
        endpoint=f"redis://127.0.0.1:{port}/0",
        command=[program, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                 "--appendonly", "no", "--dir", str(directory)],
        ready=ready,
        directory=directory,
    )


def memcached_command(port: int, program: str = "memcached") -> list[str]:
    """memcached in the foreground on ``port`` (as user memcache when we are root)."""
    command = [program, "-l", "127.0.0.1", "-p", str(port), "-m", "64", "-U", "0"]
    return [*command, "-u", "memcache"] if os.geteuid() == 0 else command


def memcached() -> PrivateServer:
    """memcached: memory only, so a restart empties it."""
    program = _program("memcached", "memcached")
    directory = _directory("memcached")
    port = free_port()
    command = memcached_command(port, program)

    def ready() -> bool:
        from pymemcache.client.base import Client

        client = Client(("127.0.0.1", port), connect_timeout=1, timeout=1)
        try:
            client.version()
            return True
        finally:
            client.close()

    return PrivateServer(
        name="private memcached",
        port=port,
        endpoint=f"127.0.0.1:{port}",
        command=command,
        ready=ready,
        directory=directory,
    )


def secantus() -> PrivateServer:
    """SecantusDB (a MongoDB-protocol server) storing its data on disk, so it survives restarts."""
    program = _program("SecantusDB", "secantusd-py")
    directory = _directory("secantus")
    port = free_port()
    # Short server selection: during an outage an operation fails in 2 s, not pymongo's 30 s.
    # No socket timeout: the backend bounds every call itself (pymongo.timeout()).
    url = f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=2000&connectTimeoutMS=2000"

    def ready() -> bool:
        from pymongo import MongoClient

        client: MongoClient[dict[str, object]] = MongoClient(url)
        try:
            client.admin.command("ping")
            return True
        finally:
            client.close()

    return PrivateServer(
        name="private SecantusDB",
        port=port,
        endpoint=url,
        # --sync-on-commit: SecantusDB journals a write asked with j: true, but commits a
        # transaction (the backend's saves) without syncing its log whatever the write
        # concern; without the option a crash lost acknowledged saves (RESULTS.md, #6).
        command=[program, "--host", "127.0.0.1", "--port", str(port),
                 "--storage-path", str(directory / "data"), "--log-level", "WARNING",
                 "--sync-on-commit"],
        ready=ready,
        directory=directory,
    )


def moto() -> PrivateServer:
    """moto's DynamoDB-API server (in memory: a restart empties it)."""
    import sys

    if not catalogue.MOTO_SERIAL_SCRIPT.exists():
        missing(Server("private moto", "127.0.0.1", 0, install="triggers-dynamodb's tests"),
                f"{catalogue.MOTO_SERIAL_SCRIPT} is missing")
    directory = _directory("moto")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # A local server accepts any credentials; boto3 needs some.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

    def ready() -> bool:
        from triggers_dynamodb.clients import client_for

        client_for("us-east-1", endpoint).list_tables(Limit=1)
        return True

    return PrivateServer(
        name="private moto",
        port=port,
        endpoint=endpoint,
        command=[sys.executable, str(catalogue.MOTO_SERIAL_SCRIPT), str(port)],
        ready=ready,
        directory=directory,
    )


PRIVATE_SERVERS: dict[str, Callable[[], PrivateServer]] = {
    "moto": moto,
    "secantus": secantus,
    "postgresql": postgresql,
    "mariadb": mariadb,
    "redis": redis,
    "memcached": memcached,
}
"""How to make each kind of private server, by the name targets use."""
