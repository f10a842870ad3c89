"""The trigger manager: applies triggers to a session, runs tasks, cascades.

Every state change is one transaction of the storage backend
(:meth:`~triggers.storage.TriggerStorageBackend.transact`: one load and one
conditional write where the store has them, the session lock otherwise) and
is saved before any task is handed to a runner, so a crash never leaves a
task running that the session does not know about, and several processes
firing into one session never lose each other's triggers. A transaction may
apply its change more than once (when another writer saved first), so the
changes below only touch the session; runners and hooks are called with what
the saved transaction returned.

Semantics of a fire (``fire(name, kwargs)``):

1. The trigger's kwargs are validated (before anything is locked or written)
   and remembered as the latest kwargs of that trigger (session metadata
   ``triggerKwargs``).
2. For each task that listens to the trigger (``after``, ``andEvery`` or
   ``unless``), as in Triggers 2.0:

   * its ``andEvery`` trigger goes to the oldest unstarted instance still
     waiting for it, or else creates a new instance;
   * any other trigger it needs goes to every unstarted instance still
     waiting for it;
   * any trigger it listens to creates the task's first instance if it has
     none yet.

   New instances start with the latest kwargs of every trigger they need that
   has already fired. Then, if all of the task's ``unless`` triggers have
   fired, its unstarted instances (one created just now included) are
   abandoned.
3. Every instance that now holds all the triggers it needs is scheduled; the
   session is saved; the scheduled instances go to their runners.

A finished task fires a trigger named after the task, with the mapping it
returned as kwargs (the cascade), in the same locked save that marks it
finished: a cascade is never lost nor applied twice.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from triggers import observability, run_leases, values
from triggers.errors import (
    ConfigurationError,
    InvalidTransitionError,
    Retry,
    RetryTask,
    StatusChange,
    TriggersError,
    ValueDomainError,
)
from triggers.exceptions import storable_context
from triggers.registry import task_runners, trigger_managers
from triggers.runners import EagerTaskRunner, TaskRunner
from triggers.storage import TRIGGER_KWARGS_KEY, TriggerStorageBackend
from triggers.tasks import TaskContext, resolve_task
from triggers.types import InstanceStatus, TaskConfig, TaskInstance

# ``trigger_managers`` is re-exported where Triggers 2.0 had it (``triggers.manager``).
__all__ = ["TriggerManager", "trigger_managers"]

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEYS_KEY = "idempotencyKeys"
"""Session metadata: the most recent idempotency keys of fires, oldest first."""

IDEMPOTENCY_KEYS_KEPT = 100


class TriggerManager:
    """Drives one session: ``TriggerManager(storage).fire("pageReceived", {...})``.

    ``runner`` is the default :class:`TaskRunner` (or its registry name);
    ``runners`` maps names to runner objects for tasks whose ``using``
    directive names them. A ``using`` name not given there is looked up in the
    ``triggers.runners`` registry. ``run_lease_ttl`` is how long a running
    instance's run lease lasts between heartbeats (:mod:`triggers.run_leases`):
    after a worker dies, its instance is runnable again that long later.
    """

    def __init__(
        self,
        storage: TriggerStorageBackend,
        *,
        runner: TaskRunner | str | None = None,
        runners: Mapping[str, TaskRunner] | None = None,
        run_lease_ttl: float = run_leases.DEFAULT_RUN_LEASE_TTL,
    ) -> None:
        if isinstance(run_lease_ttl, bool) or not isinstance(run_lease_ttl, int | float) or not (
            run_lease_ttl > 0
        ):
            raise ValueError(f"run_lease_ttl must be a positive number of seconds, not {run_lease_ttl!r}")
        self.storage = storage
        self.run_lease_ttl = float(run_lease_ttl)
        self._runners: dict[str, TaskRunner] = dict(runners or {})
        if isinstance(runner, str):
            runner = self._runner_named(runner)
        self.runner: TaskRunner = runner or EagerTaskRunner()
        # Instances this manager marked running in the save that scheduled
        # them, because their runner runs them inline right after that save
        # (see _claim_inline); filled by _dispatch once that save is done,
        # emptied by run_instance().
        self._claimed: dict[str, TaskInstance] = {}

    # ------------------------------------------------------------------
    # Hooks for subclasses
    # ------------------------------------------------------------------

    # Their signatures and when they are called are Triggers 2.0's, so a
    # custom manager written for it keeps working. Each is called after the
    # save it reports (the lock is released) and before the instances that
    # save scheduled are handed to their runners.

    def _post_fire(self, trigger_name: str, tasks_scheduled: list[TaskInstance]) -> None:
        """Called after a trigger was applied, with the instances it scheduled.

        Every trigger counts: one fired by the application, the cascade of a
        finished task (its own name), and that of a skip with ``cascade``.
        """

    def _post_replay(self, task_instance: TaskInstance) -> None:
        """Called with the failed instance (now ``replayed``) after a replay was saved.

        Also after a task replayed itself (``raise self.retry()``).
        """

    def _post_skip(self, task_instance: TaskInstance, cascade: bool) -> None:
        """Called after a failed instance was marked skipped (after its cascade, if any)."""

    # ------------------------------------------------------------------
    # Public operations
    # ------------------------------------------------------------------

    def update_configuration(self, configuration: Mapping[str, Any]) -> list[str]:
        """Add or replace task configurations (validated all-or-nothing).

        A new task whose triggers have already fired catches up: it gets an
        instance with their latest kwargs, and runs if it has them all.
        Returns the names of the instances scheduled.
        """
        parsed = TriggerStorageBackend.parse_configuration(configuration)
        self._check_runners(parsed)

        def configure() -> list[TaskInstance]:
            applied = self.storage.update_configuration(parsed)
            fired = self._fired_kwargs()
            for config in applied.values():
                catches_up = any(trigger in fired for trigger in config.required_triggers)
                if catches_up and not config.unless_met(fired) and (
                    self.storage.instance_count(config) == 0
                ):
                    self._new_instance(config, fired)
            return self._schedule_ready()

        scheduled = self.storage.transact(configure)
        self._dispatch(scheduled)
        return [instance.name for instance in scheduled]

    def fire(
        self,
        trigger_name: str,
        trigger_kwargs: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> list[str]:
        """Fire a trigger into the session; returns the instances it scheduled.

        ``idempotency_key`` makes a retried fire (after a timeout, say) a
        no-op: the session remembers the last 100 keys it applied.
        """
        if not isinstance(trigger_name, str) or not trigger_name:
            raise ValueError(f"trigger name must be a non-empty str, not {trigger_name!r}")
        values.check(trigger_name, f"session {self.storage.uid!r} trigger name")
        kwargs = self._checked_kwargs(trigger_kwargs, f"trigger {trigger_name!r} kwargs")
        if idempotency_key is not None:
            if not isinstance(idempotency_key, str) or not idempotency_key:
                raise ValueError(f"idempotency_key must be a non-empty str, not {idempotency_key!r}")
            values.check(idempotency_key, f"session {self.storage.uid!r} idempotency_key")
        attributes = {**observability.session_attributes(self.storage, self.storage.uid),
                      "triggers.trigger": trigger_name}
        with observability.span("triggers.fire", attributes):
            return self._fire(trigger_name, kwargs, idempotency_key)

    def _fire(self, trigger_name: str, kwargs: dict[str, Any], idempotency_key: str | None) -> list[str]:
        """:meth:`fire` once its arguments are checked: apply, save, dispatch."""

        def apply() -> list[TaskInstance] | None:
            metadata = self.storage.metadata
            applied_keys = list(metadata.get(IDEMPOTENCY_KEYS_KEY) or [])
            if idempotency_key is not None and idempotency_key in applied_keys:
                return None
            self._apply_trigger(trigger_name, kwargs)
            if idempotency_key is not None:
                applied_keys.append(idempotency_key)
                metadata[IDEMPOTENCY_KEYS_KEY] = applied_keys[-IDEMPOTENCY_KEYS_KEPT:]
            return self._schedule_ready()

        scheduled = self.storage.transact(apply)
        if scheduled is None:
            logger.info("session %r: fire %r with key %r was already applied",
                        self.storage.uid, trigger_name, idempotency_key)
            return []
        self._post_fire(trigger_name, scheduled)
        self._dispatch(scheduled)
        return [instance.name for instance in scheduled]

    def update_instance_status(
        self,
        task_instance: TaskInstance | str,
        status: InstanceStatus | str,
        metadata: Mapping[str, Any] | None = None,
        cascade: bool = False,
        cascade_kwargs: Mapping[str, Any] | None = None,
    ) -> TaskInstance:
        """Set an instance's status (an operator's or an external worker's call).

        Only the changes in :data:`~triggers.types.TRANSITIONS` are allowed.
        ``metadata`` is merged into the instance's metadata. With
        ``cascade`` (for ``finished`` only), the instance's own trigger fires
        with ``cascade_kwargs``, as if its task had returned them, in the same
        transaction that marks it finished; as in Triggers 2.0 nothing
        cascades unless asked. Repeating the current status changes only the
        metadata and cascades nothing, so a worker that reports ``finished``
        twice cannot cascade twice. An instance set to ``scheduled`` is handed
        to its runner again.
        """
        new_status = InstanceStatus(status)
        instance_name = _name_of(task_instance)
        if cascade and new_status is not InstanceStatus.FINISHED:
            raise ValueError(
                f"session {self.storage.uid!r}: instance {instance_name!r}: cascade=True needs "
                f"status 'finished', not {new_status.value!r} (only a finished task fires its trigger)"
            )
        if cascade_kwargs is not None and not cascade:
            raise ValueError(
                f"session {self.storage.uid!r}: instance {instance_name!r}: cascade_kwargs "
                "are the kwargs of the cascade; pass cascade=True too"
            )
        added = self._checked_kwargs(metadata, f"instance {instance_name!r} metadata", depth=0)
        result = self._checked_kwargs(cascade_kwargs, f"instance {instance_name!r} cascade_kwargs")

        def change() -> tuple[TaskInstance, list[TaskInstance] | None]:
            instance = self.storage[instance_name]
            if added:
                instance.metadata.update(added)
                instance.metadata["lastModified"] = self.storage.now()
            if instance.status is new_status:
                return instance, None
            self._set_status(instance, new_status)
            if new_status is InstanceStatus.SCHEDULED:
                return instance, [instance]
            if not cascade:
                return instance, []
            instance.metadata[TaskInstance.META_RESULT] = result
            self._apply_trigger(instance.config.name, result)
            return instance, self._schedule_ready()

        instance, scheduled = self.storage.transact(change)
        if scheduled is None:
            return instance
        if cascade:
            self._post_fire(instance.config.name, scheduled)
        self._dispatch(scheduled)
        return instance

    def resume(self) -> list[str]:
        """Hand every scheduled instance to its runner again.

        A process that dies after saving a fire but before its tasks started
        leaves them scheduled; call this (from any process) to run them. A
        running instance whose run lease has ended (its worker died) is set
        back to scheduled first, its attempt recorded in ``expiredAttempts``.
        It is safe to call at any time: an instance runs only if it is still
        scheduled when a runner takes it.
        """
        def take_back() -> list[TaskInstance]:
            now = self.storage.now()
            unresolved = self.storage.get_unresolved_instances()
            for instance in unresolved:
                if run_leases.expired(instance, now):
                    run_leases.note_expired(instance)
                    run_leases.release(instance)
                    self._set_status(instance, InstanceStatus.SCHEDULED)
            return [i for i in unresolved if i.can_run]

        scheduled = self.storage.transact(take_back)
        self._dispatch(scheduled)
        return [instance.name for instance in scheduled]

    def join_all(self, timeout: float | None = None) -> bool:
        """Wait for the tasks of every runner this manager used; True if all are done."""
        deadline = None if timeout is None else time.monotonic() + timeout
        done = True
        for runner in {id(r): r for r in (self.runner, *self._runners.values())}.values():
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            done = runner.join_all(remaining) and done
        return done

    def update_instance_metadata(
        self, task_instance: TaskInstance | str, metadata: Mapping[str, Any], *, replace: bool = False
    ) -> TaskInstance:
        """Merge ``metadata`` into an instance's metadata (or replace it).

        The status does not change; ``lastModified`` is bumped.
        """
        instance_name = _name_of(task_instance)
        checked = self._checked_kwargs(metadata, f"instance {instance_name!r} metadata", depth=0)

        def change() -> TaskInstance:
            instance = self.storage[instance_name]
            if replace:
                kept = ("created", "parent", "depth")
                keep: dict[str, Any] = {k: instance.metadata[k] for k in kept if k in instance.metadata}
                instance.metadata = {**keep, **checked}
            else:
                instance.metadata.update(checked)
            instance.metadata["lastModified"] = self.storage.now()
            return instance

        return self.storage.transact(change)

    def replay_failed_instance(
        self,
        failed_instance: TaskInstance | str,
        replacement_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> TaskInstance:
        """Replay a failed instance: it becomes ``replayed`` and a clone
        (``depth`` + 1, ``parent`` set) is scheduled, with
        ``replacement_kwargs`` (``{trigger: kwargs}``) instead of the
        original kwargs if given. Returns the clone."""
        instance_name = _name_of(failed_instance)
        replacement = None
        if replacement_kwargs is not None:
            replacement = self._checked_kwargs(
                replacement_kwargs, f"replay of {instance_name!r} kwargs", depth=0
            )
            for trigger, kwargs in replacement.items():
                if not isinstance(kwargs, dict):
                    raise ValueError(
                        f"replay of {instance_name!r}: kwargs of trigger {trigger!r} must be a dict"
                    )
        def replay() -> tuple[TaskInstance, TaskInstance, list[TaskInstance]]:
            original = self._failed_instance(instance_name, "replayed")
            if replacement is not None:
                missing = [t for t in original.config.required_triggers if t not in replacement]
                if missing:
                    raise ValueError(
                        f"replay of {instance_name!r}: replacement_kwargs lack the triggers "
                        f"{missing} that task {original.config.name!r} needs; the clone could "
                        "never run. Pass the kwargs of every trigger it needs"
                    )
            clone = self._replay(original, replacement)
            return original, clone, self._schedule_ready()

        original, clone, scheduled = self.storage.transact(replay)
        self._post_replay(original)
        self._dispatch(scheduled)
        return clone

    def skip_failed_instance(
        self, failed_instance: TaskInstance | str, cascade: bool = False, result: Mapping[str, Any] | None = None
    ) -> TaskInstance:
        """Mark a failed instance skipped; with ``cascade``, fire its trigger
        with ``result`` as kwargs as if it had finished."""
        instance_name = _name_of(failed_instance)
        kwargs = self._checked_kwargs(result, f"skip of {instance_name!r} result")

        def skip() -> tuple[TaskInstance, list[TaskInstance]]:
            instance = self._failed_instance(instance_name, "skipped")
            self._set_status(instance, InstanceStatus.SKIPPED)
            if not cascade:
                return instance, []
            self._apply_trigger(instance.config.name, kwargs)
            return instance, self._schedule_ready()

        instance, scheduled = self.storage.transact(skip)
        if cascade:
            self._post_fire(instance.config.name, scheduled)
        self._post_skip(instance, cascade)
        self._dispatch(scheduled)
        return instance

    def mark_instance_logs_resolved(self, task_instance: TaskInstance | str) -> TaskInstance:
        """Acknowledge an instance's warnings and errors."""

        def resolve() -> TaskInstance:
            instance = self.storage[_name_of(task_instance)]
            instance.metadata["logsResolved"] = True
            instance.metadata["lastModified"] = self.storage.now()
            return instance

        return self.storage.transact(resolve)

    def run_instance(self, instance_name: str) -> None:
        """Run a scheduled instance (runners call this where the work happens).

        Does nothing if the instance is no longer scheduled (another worker
        took it), unless it is running on a run lease that has ended: then
        this call takes it over as the next attempt. Records the outcome and
        cascades, in one locked save, only while its attempt still holds the
        instance (:mod:`triggers.run_leases`). An
        instance that this manager already marked running when it scheduled
        it (for an inline runner, see :attr:`TaskRunner.inline
        <triggers.runners.TaskRunner.inline>`) runs without a lock cycle of
        its own.
        """
        instance = self._claimed.pop(instance_name, None)
        if instance is None:
            instance = self._claim(instance_name)
            if instance is None:
                return
        attempt = run_leases.attempt_of(instance)
        metadata_before = {
            key: values.canonical_json(values.encode(value)) for key, value in instance.metadata.items()
        }
        context = TaskContext(self, instance)
        attributes = {**observability.session_attributes(self.storage, self.storage.uid),
                      "triggers.instance": instance_name,
                      "triggers.attempt": int(instance.metadata.get("retries", 0)) + 1}
        with observability.span("triggers.task", attributes) as span, run_leases.heartbeat(
            self, instance_name, attempt, self.run_lease_ttl
        ):
            outcome, result, error = self._execute(context)
            span.set_attribute("triggers.outcome", outcome)
        try:
            added_metadata = self._metadata_added_by_task(context, metadata_before)
        except (TypeError, ValueError) as exc:
            outcome, result, error, added_metadata = "failed", {}, exc, {}
        def record() -> tuple[TaskInstance, InstanceStatus, list[TaskInstance]] | None:
            instance = self.storage[instance_name]
            if not run_leases.held_by(instance, attempt):
                return None
            instance.metadata.update(added_metadata)
            run_leases.release(instance)
            scheduled = self._record_outcome(instance, context, outcome, result, error)
            return instance, self.storage[instance_name].status, scheduled

        try:
            recorded = self.storage.transact(record)
        except TriggersError as exc:
            self._record_unrecordable_outcome(instance_name, exc)
            return
        if recorded is None:
            current = self.storage[instance_name]
            logger.warning("session %r: %s became %s (attempt %d) while attempt %d ran; "
                           "keeping that", self.storage.uid, instance_name,
                           current.status.value, run_leases.attempt_of(current), attempt)
            return
        instance, ended, scheduled = recorded
        if ended is InstanceStatus.FINISHED:
            self._post_fire(instance.config.name, scheduled)
        elif ended is InstanceStatus.REPLAYED:
            self._post_replay(instance)
        self._dispatch(scheduled)

    def _claim(self, instance_name: str) -> TaskInstance | None:
        """Mark a scheduled instance running under a new attempt; None if it is not ours to run.

        Not ours: another worker took it, or it ended, unless it is running on
        a run lease that has ended (its worker died): then it is taken over.
        """

        def claim() -> TaskInstance | None:
            instance = self.storage[instance_name]
            now = self.storage.now()
            if not instance.can_run and not run_leases.expired(instance, now):
                return None
            run_leases.start(instance, now, self.run_lease_ttl)
            self._set_status(instance, InstanceStatus.RUNNING)
            return instance

        instance = self.storage.transact(claim)
        if instance is None:
            logger.info("session %r: %s is %s, not running it", self.storage.uid,
                        instance_name, self.storage[instance_name].status.value)
        return instance

    def _record_unrecordable_outcome(self, instance_name: str, problem: TriggersError) -> None:
        """Mark an instance failed when its outcome could not be saved.

        Without this, an outcome refused by the store (too large, outside the
        value domain) or lost to an outage would leave the instance running
        forever. If even this save fails, the error is logged and the
        instance stays running for an operator (``update_instance_status``).
        """
        logger.error("session %r: could not record the outcome of %s", self.storage.uid,
                     instance_name, exc_info=problem)
        def fail() -> None:
            instance = self.storage[instance_name]
            if instance.status is not InstanceStatus.RUNNING:
                return
            instance.metadata["error"] = self._error_record(problem)
            instance.metadata["logLevel"] = max(instance.log_level, logging.ERROR)
            instance.metadata["logsResolved"] = False
            self._set_status(instance, InstanceStatus.FAILED)

        try:
            self.storage.transact(fail)
        except TriggersError:
            logger.exception("session %r: %s stays running; set its status by hand",
                             self.storage.uid, instance_name)

    # ------------------------------------------------------------------
    # Internals (all called inside a transaction, except _execute/_dispatch)
    # ------------------------------------------------------------------

    def _checked_kwargs(
        self, kwargs: Mapping[str, Any] | None, where: str, *, depth: int = 1
    ) -> dict[str, Any]:
        """Validate kwargs before anything is locked or written.

        ``depth`` is where they will be stored: fired kwargs and task results
        sit one level inside an instance's kwargs. Round-tripping through the
        codec gives exactly what a reload would (tuples become lists,
        datetimes UTC).
        """
        where = f"session {self.storage.uid!r} {where}"
        if kwargs is None:
            return {}
        if not isinstance(kwargs, Mapping):
            raise TypeError(f"{where} must be a mapping, not {type(kwargs).__name__}")
        decoded: dict[str, Any] = values.decode(values.encode(dict(kwargs), where, depth=depth))
        return decoded

    def _failed_instance(self, instance_name: str, becoming: str) -> TaskInstance:
        """The instance, which must have failed to be replayed or skipped."""
        instance = self.storage[instance_name]
        if instance.status is not InstanceStatus.FAILED:
            raise InvalidTransitionError(
                f"session {self.storage.uid!r}: instance {instance_name!r} is "
                f"{instance.status.value}; only failed instances can be {becoming}"
            )
        return instance

    def _fired_kwargs(self) -> dict[str, dict[str, Any]]:
        fired = self.storage.metadata.get(TRIGGER_KWARGS_KEY)
        return dict(fired) if isinstance(fired, dict) else {}

    def _apply_trigger(self, trigger_name: str, kwargs: dict[str, Any]) -> None:
        fired = self._fired_kwargs()
        fired[trigger_name] = kwargs
        self.storage.metadata[TRIGGER_KWARGS_KEY] = fired
        waiting_by_task: dict[str, list[TaskInstance]] = {}
        for instance in self.storage.get_unresolved_instances():
            waiting_by_task.setdefault(instance.config.name, []).append(instance)
        for config in self.storage.tasks.values():
            if trigger_name not in config.listens_to:
                continue
            unstarted = [
                i for i in waiting_by_task.get(config.name, []) if i.status is InstanceStatus.UNSTARTED
            ]
            # As in Triggers 2.0: a task's first instance is made by the first
            # trigger it listens to (an ``unless`` one included), and each
            # ``andEvery`` fire that no waiting instance takes makes another.
            create = self.storage.instance_count(config) == 0
            if trigger_name in config.required_triggers:
                waiting = [i for i in unstarted if trigger_name not in i.kwargs]
                if trigger_name == config.and_every:
                    if waiting:
                        self._give(waiting[0], trigger_name, kwargs)
                    else:
                        create = True
                else:
                    for instance in waiting:
                        self._give(instance, trigger_name, kwargs)
            if create:
                unstarted.append(self._new_instance(config, fired))
            # Once every ``unless`` trigger has fired, whatever has not started
            # is abandoned, an instance made just now included: the session
            # shows that the task would have run, and why it did not.
            if config.unless_met(fired):
                for instance in unstarted:
                    instance.abandon_state = {"status": instance.status.value}
                    self._set_status(instance, InstanceStatus.ABANDONED)

    def _give(self, instance: TaskInstance, trigger_name: str, kwargs: dict[str, Any]) -> None:
        instance.kwargs[trigger_name] = values.decode(values.encode(kwargs))
        instance.metadata["lastModified"] = self.storage.now()

    def _new_instance(self, config: TaskConfig, fired: Mapping[str, Any]) -> TaskInstance:
        kwargs = {t: fired[t] for t in config.required_triggers if t in fired}
        return self.storage.create_instance(config, kwargs=values.decode(values.encode(kwargs)))

    def _schedule_ready(self) -> list[TaskInstance]:
        scheduled = []
        for instance in self.storage.get_unresolved_instances():
            if instance.can_schedule:
                self._set_status(instance, InstanceStatus.SCHEDULED)
                scheduled.append(instance)
        self._claim_inline(scheduled)
        return scheduled

    def _claim_inline(self, scheduled: Sequence[TaskInstance]) -> None:
        """Mark the first scheduled instance running now if its runner is inline.

        Called before the save that schedules ``scheduled``. An inline runner
        (the eager one) runs that instance in this thread as soon as the save
        is done, so recording ``running`` in the same save spares the lock
        cycle (take the lease, load, save, release) that
        :meth:`run_instance` would otherwise spend to claim it: an eager fire
        costs two lock cycles instead of three. Only the first instance is
        claimed: the others wait their turn as ``scheduled``, so a crash while
        the first one runs leaves them for :meth:`resume`, as before.
        """
        if not scheduled:
            return
        first = scheduled[0]
        if not self._runner_for(first).inline:
            return
        run_leases.start(first, self.storage.now(), self.run_lease_ttl)
        self._set_status(first, InstanceStatus.RUNNING)

    def _set_status(self, instance: TaskInstance, status: InstanceStatus) -> None:
        if status is not instance.status and not instance.can_become(status):
            raise InvalidTransitionError(
                f"session {self.storage.uid!r}: instance {instance.name!r} cannot go from "
                f"{instance.status.value} to {status.value}"
            )
        now = self.storage.now()
        instance.status = status
        instance.metadata["lastModified"] = now
        times = instance.metadata.get("statusTimes")
        instance.metadata["statusTimes"] = {**(times if isinstance(times, dict) else {}), status.value: now}

    def _execute(self, context: TaskContext) -> tuple[str, dict[str, Any], BaseException | None]:
        """Run the task outside the lock; returns (outcome, result, error)."""
        config = context.task_instance.config
        try:
            task = resolve_task(config.name, config.run)
            returned = task(context)
            if returned is None:
                return "finished", {}, None
            if not isinstance(returned, Mapping):
                raise TypeError(
                    f"task {config.name!r} returned {type(returned).__name__}; "
                    "a task returns None or a mapping of kwargs"
                )
            return "finished", self._checked_kwargs(returned, f"task {config.name!r} result"), None
        except RetryTask as retry:
            return "retry", {}, retry
        except Retry as retry:
            return self._requested_replay(context, retry)
        except StatusChange as change:
            context.task_instance.metadata.update(change.metadata)
            try:
                context.set_status(change.status)
            except (InvalidTransitionError, ValueError) as exc:
                return "failed", {}, exc
            return "finished", {}, None
        except Exception as exc:
            return "failed", {}, exc

    def _requested_replay(
        self, context: TaskContext, retry: Retry
    ) -> tuple[str, dict[str, Any], BaseException | None]:
        """The outcome of a task that raised :class:`~triggers.errors.Retry`.

        Its metadata goes where a task's own metadata changes go (validated
        with them); its replacement kwargs are checked here, outside the
        lock, like those of :meth:`replay_failed_instance`.
        """
        instance = context.task_instance
        instance.metadata.update(retry.metadata)
        if retry.replacement_kwargs is not None:
            try:
                replacement = self._checked_kwargs(
                    retry.replacement_kwargs, f"retry of {instance.name!r} replacement_kwargs", depth=0
                )
                missing = [t for t in instance.config.required_triggers if t not in replacement]
                if missing:
                    raise ValueError(
                        f"retry of {instance.name!r}: replacement_kwargs lack the triggers {missing} "
                        f"that task {instance.config.name!r} needs; the replay could never run"
                    )
            except (TypeError, ValueError) as exc:
                return "failed", {}, exc
            retry.replacement_kwargs = replacement
        return "replay", {}, retry

    @staticmethod
    def _metadata_added_by_task(context: TaskContext, before: Mapping[str, str]) -> dict[str, Any]:
        """Metadata keys the task set or changed on ``context.task_instance``.

        The instance is reloaded under the lock after the task ran, so what
        the task wrote must be carried over explicitly (validated, by key).
        """
        added: dict[str, Any] = {}
        for key, value in context.task_instance.metadata.items():
            where = f"instance {context.task_instance.name!r} metadata[{key!r}]"
            text = values.canonical_json(values.encode(value, where, depth=1))
            if before.get(key) != text:
                added[key] = values.loads(text)
        return added

    def _record_outcome(
        self,
        instance: TaskInstance,
        context: TaskContext,
        outcome: str,
        result: dict[str, Any],
        error: BaseException | None,
    ) -> list[TaskInstance]:
        level = max(instance.log_level, context.max_log_level)
        if outcome == "replay" and isinstance(error, Retry):
            actual_kwargs = self._storable_actual_kwargs(instance, context)
            if actual_kwargs is not None:
                instance.metadata[TaskInstance.META_ACTUAL_KWARGS] = actual_kwargs
            self._set_status(instance, InstanceStatus.FAILED)
            self._replay(instance, error.replacement_kwargs)
            return self._schedule_ready()
        if outcome == "retry" and isinstance(error, RetryTask):
            retries = int(instance.metadata.get("retries", 0))
            if retries < error.max_retries:
                instance.metadata["retries"] = retries + 1
                instance.metadata["retryReason"] = error.reason
                self._set_status(instance, InstanceStatus.SCHEDULED)
                return [instance]
            outcome = "failed"
        failure: dict[str, str] | None = None
        if outcome == "failed" and error is not None:
            status, failure = InstanceStatus.FAILED, self._error_record(error)
        else:
            status = context.requested_status or InstanceStatus.FINISHED
            if status is InstanceStatus.FAILED:
                failure = {"type": "", "message": "the task set its own status to failed", "traceback": ""}
        actual_kwargs = self._storable_actual_kwargs(instance, context)
        if actual_kwargs is not None:
            instance.metadata[TaskInstance.META_ACTUAL_KWARGS] = actual_kwargs
        if failure is not None:
            instance.metadata[TaskInstance.META_ERROR] = failure
            instance.metadata[TaskInstance.META_EXCEPTION_TYPE] = failure["type"]
            instance.metadata[TaskInstance.META_EXCEPTION_INFO] = failure["traceback"]
            exception_context = None if error is None else storable_context(
                error, f"instance {instance.name!r} metadata[{TaskInstance.META_EXCEPTION_CONTEXT!r}]"
            )
            if exception_context is not None:
                instance.metadata[TaskInstance.META_EXCEPTION_CONTEXT] = exception_context
            level = max(level, logging.ERROR)
        elif status is InstanceStatus.FINISHED:
            instance.metadata[TaskInstance.META_RESULT] = result
        self._set_status(instance, status)
        if level > instance.log_level:
            instance.metadata["logLevel"] = level
            instance.metadata["logsResolved"] = False
        if instance.status is InstanceStatus.FINISHED:
            self._apply_trigger(instance.config.name, result)
            return self._schedule_ready()
        return []

    def _replay(self, failed: TaskInstance, replacement: Mapping[str, Any] | None) -> TaskInstance:
        """Mark ``failed`` replayed and add its clone (to be scheduled by the caller)."""
        self._set_status(failed, InstanceStatus.REPLAYED)
        clone = self.storage.clone_instance(failed)
        if replacement is not None:
            clone.kwargs = dict(replacement)
        return clone

    @staticmethod
    def _storable_actual_kwargs(instance: TaskInstance, context: TaskContext) -> dict[str, Any] | None:
        """The kwargs the task ran with, or None if they cannot be kept in metadata.

        They sit one level deeper there than in the instance's kwargs, so
        kwargs at the very edge of the nesting limit (which a fire accepts)
        are left out rather than making the outcome unrecordable.
        """
        where = f"instance {instance.name!r} metadata[{TaskInstance.META_ACTUAL_KWARGS!r}]"
        try:
            values.encode(context.trigger_kwargs, where, depth=1)
        except ValueDomainError as exc:
            logger.info("session %r: not recording %s: %s", context.session_uid,
                        TaskInstance.META_ACTUAL_KWARGS, exc)
            return None
        return context.trigger_kwargs

    @staticmethod
    def _error_record(error: BaseException) -> dict[str, str]:
        """How a failure is stored in an instance's metadata."""
        return {
            "type": f"{type(error).__module__}.{type(error).__qualname__}",
            "message": str(error),
            "traceback": "".join(traceback.format_exception(error)),
        }

    def _runner_named(self, name: str) -> TaskRunner:
        runner = self._runners.get(name)
        if runner is None:
            runner = task_runners.get(name)
            self._runners[name] = runner
        return runner

    def _runner_for(self, instance: TaskInstance) -> TaskRunner:
        using = instance.config.using
        return self._runner_named(using) if using else self.runner

    def _check_runners(self, configs: Mapping[str, TaskConfig]) -> None:
        for config in configs.values():
            if config.using is None or config.using in self._runners:
                continue
            try:
                task_runners.load(config.using)
            except TriggersError as exc:
                raise ConfigurationError(
                    f"task {config.name!r}: directive 'using' names no known runner: {exc}"
                ) from exc

    def _dispatch(self, scheduled: Sequence[TaskInstance]) -> None:
        """Hand scheduled instances to their runners (after the save).

        The fire that scheduled them is saved, so a failure to start one must
        not reach its caller (who might fire again): it is logged and kept in
        the runner's ``errors``; :meth:`resume` retries such instances.
        """
        for instance in scheduled:
            runner = self._runner_for(instance)
            if instance.status is InstanceStatus.RUNNING:
                # Claimed by _claim_inline in the save just made: only now,
                # with that save done, may run_instance skip its own claim.
                self._claimed[instance.name] = instance
            try:
                runner.run(self, instance.name)
            except Exception as exc:
                self._claimed.pop(instance.name, None)
                logger.error("session %r: could not run %s", self.storage.uid, instance.name,
                             exc_info=exc)
                runner.errors.append(exc)


def _name_of(task_instance: TaskInstance | str) -> str:
    """The instance name; Triggers 2.0's methods took an instance or its name."""
    return task_instance.name if isinstance(task_instance, TaskInstance) else task_instance
