"""The one message a scheduled instance becomes: data only, never code.

A Celery task carries the storage selection (a backend's registry name and,
unless the application keeps them on its workers, its options), the session
uid, the instance name and the attempt it is meant to start. The worker
rebuilds the storage from that and reads everything else (the task's
configuration, its kwargs, its status) from the session itself, so a message
can never run a task with stale or forged kwargs, and nothing is pickled: the
body is JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from triggers.errors import ConfigurationError

__all__ = ["MESSAGE_FORMAT", "RunMessage"]

MESSAGE_FORMAT = "triggers-run/1"
"""The ``format`` field of every message body; a worker refuses any other."""


@dataclass(frozen=True)
class RunMessage:
    """What a worker needs to run one instance."""

    backend: str
    options: Mapping[str, Any] | None
    """The backend's options, or None: the worker uses its own configuration."""
    uid: str
    instance: str
    attempt: int
    """The attempt this message is meant to start (the instance's attempt + 1 when sent)."""

    def to_data(self) -> dict[str, Any]:
        """The JSON body; options that are not JSON are refused, naming them."""
        storage: dict[str, Any] = {"backend": self.backend}
        if self.options is not None:
            for key, value in self.options.items():
                try:
                    json.dumps(value, allow_nan=False)
                except (TypeError, ValueError):
                    raise ConfigurationError(
                        f"storage backend {self.backend!r}: option {key!r} ({type(value).__name__}) "
                        "cannot travel in a Celery message; give the runner ship_options=False "
                        "and configure the workers' storage instead (worker_storage= or "
                        "TRIGGERS_STORAGE_OPTIONS)"
                    ) from None
            storage["options"] = dict(self.options)
        return {"format": MESSAGE_FORMAT, "storage": storage, "uid": self.uid,
                "instance": self.instance, "attempt": self.attempt}

    @classmethod
    def from_data(cls, data: object) -> RunMessage:
        """Validate a received body; a :class:`ConfigurationError` says what is wrong."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"a triggers message must be a JSON object, not {type(data).__name__}")
        if data.get("format") != MESSAGE_FORMAT:
            raise ConfigurationError(
                f"a triggers message must have format {MESSAGE_FORMAT!r}, not {data.get('format')!r}"
            )
        storage = data.get("storage")
        if not isinstance(storage, Mapping) or not isinstance(storage.get("backend"), str):
            raise ConfigurationError("a triggers message needs 'storage': {'backend': NAME, 'options': {...}}")
        options = storage.get("options")
        if options is not None and not isinstance(options, Mapping):
            raise ConfigurationError("a triggers message's storage 'options' must be an object")
        texts = {key: data.get(key) for key in ("uid", "instance")}
        for key, value in texts.items():
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"a triggers message needs {key!r}, a non-empty string, not {value!r}")
        attempt = data.get("attempt")
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
            raise ConfigurationError(f"a triggers message needs 'attempt', a positive integer, not {attempt!r}")
        return cls(backend=storage["backend"], options=None if options is None else dict(options),
                   uid=str(texts["uid"]), instance=str(texts["instance"]), attempt=attempt)
