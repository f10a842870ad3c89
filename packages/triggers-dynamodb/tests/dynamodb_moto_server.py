"""moto's DynamoDB server, answering one request at a time: ``python dynamodb_moto_server.py PORT``.

DynamoDB applies each request atomically: a conditional ``UpdateItem`` checks
and writes as one step, so of two processes taking a free lease only one
wins. moto's own ``moto_server`` serves requests on many threads and checks
conditions and writes items without a lock, so two such updates can both
succeed, and a failed transaction restores a copy of the whole table taken
before it (undoing writes other threads made meanwhile). Serializing requests
gives the tests DynamoDB's per-request atomicity; moto's backend code is
unchanged. (It also makes every transaction invisible to readers until it is
complete, so the loader's handling of a half-seen save is tested separately,
by writing half a save directly.)
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class OneAtATime:
    """WSGI middleware running the wrapped application for one request at a time."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.mutex = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.mutex:
            return list(self.app(environ, start_response))


def main() -> None:
    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, OneAtATime(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
