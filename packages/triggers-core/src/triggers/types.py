"""Task configurations and task instances: the things a session holds.

A :class:`TaskConfig` says *when* a task runs (``after`` these triggers,
``andEvery`` time that one fires, ``unless`` those fired) and *what* runs
(``run``, on the runner named by ``using``, with ``withParams``). A
:class:`TaskInstance` is one run of a task: ``t_importSubject#0``, with the
kwargs of the triggers it received and its status.

Both convert to and from plain mappings (``to_mapping`` / ``from_mapping``):
that is the form backends store, with every value already encoded by
:mod:`triggers.values`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from triggers import values
from triggers.errors import ConfigurationError, ValueDomainError

__all__ = ["InstanceStatus", "TaskConfig", "TaskInstance"]


class InstanceStatus(StrEnum):
    """The life cycle of a task instance.

    ``unstarted`` → ``scheduled`` → ``running`` → ``finished`` | ``failed``;
    an unstarted instance can be ``abandoned`` (its ``unless`` triggers fired);
    a failed one can be ``replayed`` (a clone runs again) or ``skipped``.
    """

    ABANDONED = "abandoned"
    FAILED = "failed"
    FINISHED = "finished"
    REPLAYED = "replayed"
    RUNNING = "running"
    SCHEDULED = "scheduled"
    SKIPPED = "skipped"
    UNSTARTED = "unstarted"


RESOLVED_STATUSES = frozenset(
    {InstanceStatus.ABANDONED, InstanceStatus.FINISHED, InstanceStatus.REPLAYED, InstanceStatus.SKIPPED}
)
"""Statuses after which an instance never changes again (except its logs)."""

_S = InstanceStatus
TRANSITIONS: Mapping[InstanceStatus, frozenset[InstanceStatus]] = {
    _S.UNSTARTED: frozenset({_S.SCHEDULED, _S.ABANDONED}),
    _S.SCHEDULED: frozenset({_S.RUNNING, _S.UNSTARTED, _S.ABANDONED, _S.FINISHED, _S.FAILED, _S.SKIPPED}),
    _S.RUNNING: frozenset({_S.FINISHED, _S.FAILED, _S.SCHEDULED, _S.SKIPPED}),
    _S.FAILED: frozenset({_S.REPLAYED, _S.SKIPPED}),
    _S.FINISHED: frozenset(),
    _S.ABANDONED: frozenset(),
    _S.REPLAYED: frozenset(),
    _S.SKIPPED: frozenset(),
}
"""Status changes that are allowed; resolved statuses are final.

A finished instance has fired its trigger, so letting it finish (or run)
again would apply its cascade twice.
"""

KNOWN_DIRECTIVES = frozenset({"after", "run", "unless", "andEvery", "using", "withParams"})

_STATUSES: Mapping[str, InstanceStatus] = {status.value: status for status in InstanceStatus}
"""Each status by its stored name: a dict lookup costs less than ``InstanceStatus(name)``."""

_VALIDATED: dict[tuple[str, str], TaskConfig] = {}
"""Configs already validated, by task name and canonical stored text (see
:meth:`TaskConfig.from_stored`); shared by every session of the process."""

_VALIDATED_KEPT = 1024
"""Most entries :data:`_VALIDATED` holds; it starts over when full."""


def _check_task_name(name: object) -> None:
    """A task name: non-empty text, without the '#' that instance names use."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"task name must be a non-empty string, not {name!r}")
    _check_name_text(name, name, "task name")
    if "#" in name:
        raise ConfigurationError(f"task {name!r}: '#' is reserved for instance names (task#N)")


def _checked_run(task: str, run: object) -> str:
    """The ``run`` directive: a required dotted path."""
    if run is None:
        raise ConfigurationError(f"task {task!r}: directive 'run' is required")
    if not isinstance(run, str) or not run.strip():
        raise ConfigurationError(
            f"task {task!r}: directive 'run' must be a dotted path string, not {run!r}"
        )
    _check_name_text(task, run, "run")
    return run.strip()


def _checked_with_params(task: str, raw: object) -> dict[str, dict[str, Any]]:
    """The ``withParams`` directive: trigger names to dicts of storable values."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"task {task!r}: directive 'withParams' must map trigger names to dicts")
    with_params: dict[str, dict[str, Any]] = {}
    for trigger, params in raw.items():
        if not isinstance(trigger, str) or not isinstance(params, Mapping):
            raise ConfigurationError(
                f"task {task!r}: directive 'withParams' must map trigger names to dicts, "
                f"found {trigger!r}: {params!r}"
            )
        _check_name_text(task, trigger, "withParams")
        # Each trigger's params sit one level inside the stored directive.
        _check_value(params, f"task {task!r} withParams[{trigger!r}]", depth=1)
        with_params[trigger] = dict(params)
    return with_params


def _check_value(value: object, where: str, *, depth: int = 0) -> None:
    """A directive's value must lie in the value domain; refused as a ConfigurationError."""
    try:
        values.check(value, where, depth=depth)
    except ValueDomainError as exc:
        raise ConfigurationError(str(exc)) from exc


def _trigger_list(
    task: str, directive: str, raw: object, *, required: bool, allow_empty: bool = False
) -> tuple[str, ...]:
    if raw is None:
        if required:
            raise ConfigurationError(f"task {task!r}: directive {directive!r} is required")
        return ()
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise ConfigurationError(
            f"task {task!r}: directive {directive!r} must be a list of trigger names, "
            f"not {type(raw).__name__}"
        )
    names: list[str] = []
    for item in raw:
        if not isinstance(item, str) or not item:
            raise ConfigurationError(
                f"task {task!r}: directive {directive!r} must hold non-empty trigger names, "
                f"found {item!r}"
            )
        _check_name_text(task, item, directive)
        if item not in names:
            names.append(item)
    if required and not names and not allow_empty:
        raise ConfigurationError(f"task {task!r}: directive {directive!r} must name at least one trigger")
    return tuple(names)


def _optional_name(task: str, directive: str, raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        raise ConfigurationError(
            f"task {task!r}: directive {directive!r} must be a non-empty string, not {raw!r}"
        )
    _check_name_text(task, raw, directive)
    return raw


def _check_name_text(task: str, text: str, directive: str) -> None:
    try:
        values.check(text, f"task {task!r}: directive {directive!r}")
    except ValueDomainError as exc:
        raise ConfigurationError(str(exc)) from None


@dataclass(frozen=True)
class TaskConfig:
    """The configuration of one task, keyed by its name in the session.

    Directives (as written in ``update_configuration``):

    ``after`` (required)
        Trigger names that must all have fired before the task runs. May be
        an empty list when ``andEvery`` is given: then every fire of that
        trigger runs the task.
    ``run`` (required)
        Dotted path of the task: a callable taking a
        :class:`~triggers.tasks.TaskContext`, or a
        :class:`~triggers.tasks.TriggerTask` subclass.
    ``unless``
        Trigger names that, once all of them have fired, abandon the task's
        instances that have not started.
    ``andEvery``
        One trigger that must also fire, and that creates a new instance of
        the task each time it fires (when no waiting instance takes it).
    ``using``
        Name of the runner (``triggers.runners`` entry point) for this task.
    ``withParams``
        ``{trigger_name: {param: value}}`` merged *under* the kwargs fired
        with that trigger (fired kwargs win).

    Any other directive is kept verbatim in ``extra`` and round-trips.
    """

    name: str
    after: tuple[str, ...]
    run: str
    unless: tuple[str, ...] = ()
    and_every: str | None = None
    using: str | None = None
    with_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, name: str, directives: Mapping[str, Any]) -> TaskConfig:
        """Validate ``directives`` and build a config; errors name task and directive."""
        _check_task_name(name)
        if not isinstance(directives, Mapping):
            raise ConfigurationError(
                f"task {name!r}: configuration must be a mapping of directives, "
                f"not {type(directives).__name__}"
            )
        run = _checked_run(name, directives.get("run"))
        for key in directives:
            if not isinstance(key, str):
                raise ConfigurationError(f"task {name!r}: directive names must be strings, found {key!r}")
            _check_name_text(name, key, "directive name")
        extra = {key: value for key, value in directives.items() if key not in KNOWN_DIRECTIVES}
        for key, value in extra.items():
            _check_value(value, f"task {name!r} directive {key!r}")
        return cls(
            name=name,
            # ``after: []`` is valid with ``andEvery`` (each of its fires runs
            # the task), as in Triggers 2.0; missing ``after`` never is.
            after=_trigger_list(
                name, "after", directives.get("after"), required=True,
                allow_empty=directives.get("andEvery") is not None,
            ),
            run=run,
            unless=_trigger_list(name, "unless", directives.get("unless"), required=False),
            and_every=_optional_name(name, "andEvery", directives.get("andEvery")),
            using=_optional_name(name, "using", directives.get("using")),
            with_params=_checked_with_params(name, directives.get("withParams")),
            extra=extra,
        )

    def to_mapping(self) -> dict[str, values.JSONValue]:
        """The stored form: directives by their configuration names, values encoded."""
        mapping: dict[str, values.JSONValue] = {
            "after": list(self.after),
            "run": self.run,
        }
        if self.unless:
            mapping["unless"] = list(self.unless)
        if self.and_every is not None:
            mapping["andEvery"] = self.and_every
        if self.using is not None:
            mapping["using"] = self.using
        if self.with_params:
            mapping["withParams"] = values.encode(dict(self.with_params), f"task {self.name!r} withParams")
        for key, value in self.extra.items():
            mapping[key] = values.encode(value, f"task {self.name!r} directive {key!r}")
        return mapping

    @classmethod
    def from_stored(cls, name: str, stored: Mapping[str, Any], *, text: str | None = None) -> TaskConfig:
        """Inverse of :meth:`to_mapping` (decodes values, then validates).

        ``text``, when the caller has it, is the canonical JSON text of
        ``stored`` (:func:`triggers.values.canonical_json`). Every fire loads
        the session's task configs again, and validating them is most of what
        that costs; with ``text``, a config validated once for the same name
        and text is not validated again (the validation depends on nothing
        else). The config returned is always a new object with its own
        ``withParams`` and extra directives, as without ``text``.
        """
        known = None if text is None or cls is not TaskConfig else _VALIDATED.get((name, text))
        if known is not None:
            return known._copy(stored)
        directives = dict(stored)
        if "withParams" in directives:
            directives["withParams"] = values.decode(directives["withParams"])
        for key in list(directives):
            if key not in KNOWN_DIRECTIVES:
                directives[key] = values.decode(directives[key])
        config = cls.from_mapping(name, directives)
        if text is not None and cls is TaskConfig:
            if len(_VALIDATED) >= _VALIDATED_KEPT:
                _VALIDATED.clear()
            _VALIDATED[name, text] = config
        return config

    @classmethod
    def from_text(cls, name: str, text: str) -> TaskConfig:
        """:meth:`from_stored` of a record given as its canonical JSON text.

        A config validated before for the same text, without ``withParams``
        or extra directives (which need their values decoded afresh), is
        copied without even parsing the text.
        """
        known = _VALIDATED.get((name, text)) if cls is TaskConfig else None
        if known is not None and not known.with_params and not known.extra:
            return known._copy({})
        return cls.from_stored(name, json.loads(text), text=text)

    def _copy(self, stored: Mapping[str, Any]) -> TaskConfig:
        """A new config equal to this validated one, decoding its values from ``stored``.

        ``stored`` is the record this config was validated from (or one with
        the same canonical text); only ``withParams`` and extra directives are
        read from it, so that the copy shares no mutable value with this one.
        """
        with_params: dict[str, dict[str, Any]] = {}
        extra: dict[str, Any] = {}
        if self.with_params:
            decoded = values.decode(stored["withParams"])
            with_params = {trigger: dict(params) for trigger, params in decoded.items()}
        if self.extra:
            extra = {key: values.decode(stored[key]) for key in self.extra}
        return TaskConfig(
            name=self.name,
            after=self.after,
            run=self.run,
            unless=self.unless,
            and_every=self.and_every,
            using=self.using,
            with_params=with_params,
            extra=extra,
        )

    @property
    def required_triggers(self) -> tuple[str, ...]:
        """Every trigger an instance needs before it can run (``after`` + ``andEvery``)."""
        if self.and_every is None or self.and_every in self.after:
            return self.after
        return (*self.after, self.and_every)

    def unless_met(self, fired: Mapping[str, Any]) -> bool:
        """True once every ``unless`` trigger is among ``fired``: the task is abandoned."""
        return bool(self.unless) and all(trigger in fired for trigger in self.unless)

    @property
    def listens_to(self) -> frozenset[str]:
        """Triggers that affect this task in any way."""
        return frozenset((*self.required_triggers, *self.unless))


class TaskInstance:
    """One run of a task: ``name`` is ``task#N``.

    ``kwargs`` maps each trigger the instance received to the kwargs it was
    fired with. ``metadata`` holds the manager's bookkeeping (timestamps,
    parent and depth of replays, highest log level, the error of a failed run)
    and anything a task adds. ``abandon_state`` (stored as ``abandonState``)
    remembers what an abandoned instance looked like before it was abandoned.
    """

    __slots__ = ("_status", "abandon_state", "config", "kwargs", "metadata", "name")

    # The status values by the names Triggers 2.0 gave them; each equals the
    # :class:`InstanceStatus` member (a ``str`` enum), so either compares.
    STATUS_ABANDONED = InstanceStatus.ABANDONED
    STATUS_FAILED = InstanceStatus.FAILED
    STATUS_FINISHED = InstanceStatus.FINISHED
    STATUS_REPLAYED = InstanceStatus.REPLAYED
    STATUS_RUNNING = InstanceStatus.RUNNING
    STATUS_SCHEDULED = InstanceStatus.SCHEDULED
    STATUS_SKIPPED = InstanceStatus.SKIPPED
    STATUS_UNSTARTED = InstanceStatus.UNSTARTED

    LOG_LEVEL_THRESHOLD = logging.ERROR
    """Lowest log level that needs to be marked resolved (as in Triggers 2.0).

    A warning is recorded in ``logLevel`` but does not put the instance in
    :meth:`~triggers.storage.TriggerStorageBackend.get_instances_with_unresolved_logs`.
    """

    # Keys of ``metadata`` the manager writes (the names Triggers 2.0 used,
    # so code that reads them keeps working).
    META_ACTUAL_KWARGS = "actualKwargs"
    """The kwargs the task ran with (``withParams`` merged), set when it finishes or fails."""
    META_COOLDOWN = "cooldown"
    """Seconds a task asked to wait before its replay (``TriggerTask.retry(cooldown=...)``)."""
    META_CREATED = "created"
    META_DEPTH = "depth"
    META_ERROR = "error"
    """``{type, message, traceback}`` of a failed run."""
    META_EXCEPTION_CONTEXT = "exceptionContext"
    """What :func:`triggers.exceptions.with_context` attached to the exception of a failed run."""
    META_EXCEPTION_INFO = "exceptionInfo"
    """The formatted traceback of a failed run."""
    META_EXCEPTION_TYPE = "exceptionType"
    """``module.QualName`` of the exception of a failed run."""
    META_LAST_MODIFIED = "lastModified"
    META_LOG_LEVEL = "logLevel"
    META_LOGS_RESOLVED = "logsResolved"
    META_PARENT = "parent"
    META_RESULT = "result"
    """The mapping a finished task returned (``{}`` for ``None``)."""
    META_RETRIES = "retries"
    META_STATUS_TIMES = "statusTimes"
    """``{status: datetime}`` of every status the instance reached."""
    META_TIMESTAMPS = META_STATUS_TIMES
    """Triggers 2.0's name for the timestamps of status changes.

    There, ``metadata["timestamps"]`` also held ``created`` and
    ``lastModified``; here those two are metadata keys of their own
    (:attr:`TIMESTAMP_CREATED`, :attr:`TIMESTAMP_LAST_MODIFIED`, and the
    :attr:`last_modified` property).
    """
    TIMESTAMP_CREATED = META_CREATED
    TIMESTAMP_LAST_MODIFIED = META_LAST_MODIFIED

    def __init__(
        self,
        name: str,
        config: TaskConfig,
        *,
        status: InstanceStatus | str = InstanceStatus.UNSTARTED,
        kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        abandon_state: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.status = InstanceStatus(status)
        self.kwargs: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (kwargs or {}).items()}
        self.abandon_state: dict[str, Any] | None = (
            None if abandon_state is None else dict(abandon_state)
        )
        self.metadata: dict[str, Any] = dict(metadata or {})

    def __repr__(self) -> str:
        return f"TaskInstance({self.name!r}, status={self.status.value!r})"

    @property
    def status(self) -> InstanceStatus:
        """The instance's :class:`InstanceStatus`; assigning a status name converts it."""
        return self._status

    @status.setter
    def status(self, status: InstanceStatus | str) -> None:
        self._status = InstanceStatus(status)

    @property
    def task_name(self) -> str:
        return self.config.name

    @property
    def missing_triggers(self) -> tuple[str, ...]:
        """Required triggers this instance has not received yet."""
        return tuple(t for t in self.config.required_triggers if t not in self.kwargs)

    @property
    def can_schedule(self) -> bool:
        """Unstarted and holding every trigger it needs."""
        return self.status is InstanceStatus.UNSTARTED and not self.missing_triggers

    @property
    def can_run(self) -> bool:
        """Scheduled, so a runner may start it."""
        return self.status is InstanceStatus.SCHEDULED

    @property
    def can_abandon(self) -> bool:
        """Not started yet, so ``unless`` may still abandon it."""
        return self.status is InstanceStatus.UNSTARTED

    @property
    def can_replay(self) -> bool:
        return self.status is InstanceStatus.FAILED

    @property
    def can_skip(self) -> bool:
        return self.status is InstanceStatus.FAILED

    def can_become(self, status: InstanceStatus) -> bool:
        """True if the instance may change to ``status`` (see :data:`TRANSITIONS`)."""
        return status in TRANSITIONS[self.status]

    @property
    def is_resolved(self) -> bool:
        """True once the instance can never run again."""
        return self.status in RESOLVED_STATUSES

    @property
    def depth(self) -> int:
        """0 for an original instance, 1 for its replay, 2 for the replay's replay..."""
        depth = self.metadata.get("depth", 0)
        return depth if isinstance(depth, int) else 0

    @property
    def parent(self) -> str | None:
        """Name of the failed instance this one replays, if any."""
        parent = self.metadata.get("parent")
        return parent if isinstance(parent, str) else None

    @property
    def log_level(self) -> int:
        """Highest logging level the task emitted (``logging.NOTSET`` if none)."""
        level = self.metadata.get("logLevel", logging.NOTSET)
        return level if isinstance(level, int) else logging.NOTSET

    @property
    def log_level_name(self) -> str:
        return logging.getLevelName(self.log_level)

    @property
    def logs_relevant(self) -> bool:
        """False once the instance was abandoned, replayed or skipped.

        Someone already dealt with such an instance, so its logs no longer
        need attention.
        """
        return self.status not in {InstanceStatus.ABANDONED, InstanceStatus.REPLAYED, InstanceStatus.SKIPPED}

    @property
    def logs_resolved(self) -> bool:
        """False while relevant logs at :attr:`LOG_LEVEL_THRESHOLD` or above
        await someone's attention."""
        if not self.logs_relevant or self.log_level < self.LOG_LEVEL_THRESHOLD:
            return True
        return bool(self.metadata.get(self.META_LOGS_RESOLVED, False))

    @property
    def last_modified(self) -> datetime | None:
        moment = self.metadata.get("lastModified")
        return moment if isinstance(moment, datetime) else None

    def to_mapping(self) -> dict[str, values.JSONValue]:
        """The stored form, with values encoded (raises on values outside the domain)."""
        where = f"instance {self.name!r}"
        mapping: dict[str, values.JSONValue] = {
            "task": self.config.name,
            "status": self.status.value,
            "kwargs": values.encode(self.kwargs, f"{where} kwargs"),
            "metadata": values.encode(self.metadata, f"{where} metadata"),
        }
        if self.abandon_state is not None:
            mapping["abandonState"] = values.encode(self.abandon_state, f"{where} abandonState")
        return mapping

    @classmethod
    def from_stored(
        cls, name: str, stored: Mapping[str, Any], configs: Mapping[str, TaskConfig]
    ) -> TaskInstance:
        """Inverse of :meth:`to_mapping`; ``configs`` supplies the task's config."""
        task = stored.get("task") or name.partition("#")[0]
        config = configs.get(task)
        if config is None:
            raise ValueError(f"instance {name!r} belongs to unknown task {task!r}")
        return cls._decoded(
            name,
            config,
            stored.get("status", InstanceStatus.UNSTARTED),
            values.decode(stored.get("kwargs") or {}),
            values.decode(stored.get("abandonState")),
            values.decode(stored.get("metadata") or {}),
        )

    @classmethod
    def from_text(cls, name: str, text: str, configs: Mapping[str, TaskConfig]) -> TaskInstance:
        """:meth:`from_stored` of a record given as its canonical JSON text.

        Parses and decodes in one pass (:func:`triggers.values.parse_decoded`),
        which also runs the decoding over the record's own dict and its
        ``task`` and ``status``. For a record :meth:`from_stored` accepts that
        changes nothing (its keys are plain names; a ``task`` or ``status``
        that is not text fails either way), and anything that goes wrong is
        done again by :meth:`from_stored`, for its error message.
        """
        try:
            record = values.parse_decoded(text)
            task = record.get("task") or name.partition("#")[0]
            config = configs[task]
            return cls._decoded(
                name,
                config,
                record.get("status", InstanceStatus.UNSTARTED),
                record.get("kwargs") or {},
                record.get("abandonState"),
                record.get("metadata") or {},
            )
        except Exception:
            pass
        return cls.from_stored(name, json.loads(text), configs)

    @classmethod
    def _decoded(
        cls,
        name: str,
        config: TaskConfig,
        status: Any,
        kwargs: Any,
        abandon_state: Any,
        metadata: Any,
    ) -> TaskInstance:
        """An instance of freshly decoded values, which it may keep without copying.

        The constructor copies every dict it is given, so that an instance
        never shares them with its caller; values decoded just now are
        shared with nobody, so loading a session skips those copies. Anything
        but the plain dicts of a decoded record goes through the constructor,
        which converts or refuses it as it always did.
        """
        if (
            cls is TaskInstance
            and type(kwargs) is dict
            and type(metadata) is dict
            and (abandon_state is None or type(abandon_state) is dict)
            and all(type(received) is dict for received in kwargs.values())
        ):
            known = _STATUSES.get(status) if type(status) is str else None
            instance = object.__new__(cls)
            instance._status = InstanceStatus(status) if known is None else known
            instance.name = name
            instance.config = config
            instance.kwargs = kwargs
            instance.abandon_state = abandon_state
            instance.metadata = metadata
            return instance
        return cls(name, config, status=status, kwargs=kwargs, abandon_state=abandon_state, metadata=metadata)
