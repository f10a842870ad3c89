"""The worker side: the one Celery task that runs a Triggers instance.

It is registered with ``acks_late`` (the message is acknowledged only after
the task returned) and ``reject_on_worker_lost`` (a pool process that dies
puts the message back), so a worker killed mid-task loses nothing: the
message is delivered again. Whatever arrives, the session decides what
happens, under its lock:

* the instance is ``scheduled`` and the message is for its next attempt: it
  runs (the manager claims it, runs it, records the outcome, cascades);
* it is ``running`` on a live run lease: its worker may be alive, so the
  message is sent again to arrive when the lease would end, and looked at
  then (a finished instance makes it a no-op; an ended lease a takeover);
* it is ``running`` on an ended lease: this message takes it over as the
  next attempt (:mod:`triggers.run_leases`);
* anything else (finished, failed, a stale duplicate): nothing happens.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

from triggers import run_leases
from triggers.errors import InstanceNotFoundError, LockTimeoutError, StorageError
from triggers.registry import storage_from_config, trigger_managers
from triggers_celery.message import RunMessage

if TYPE_CHECKING:
    from celery import Celery, Task

__all__ = ["LEASE_MARGIN", "STORE_RETRY_COUNTDOWN", "register_task", "run_message"]

logger = logging.getLogger(__name__)

LEASE_MARGIN = 0.5
"""Seconds after a live lease's end at which a waiting message looks again."""

STORE_RETRY_COUNTDOWN = 2.0
"""Seconds before a message whose store failed (outage, lock timeout) is tried again."""

_REGISTERED: weakref.WeakSet[Any] = weakref.WeakSet()


def register_task(app: Celery) -> None:
    """Register :data:`~triggers_celery.runner.TASK_NAME` on ``app`` (once)."""
    from triggers_celery.runner import TASK_NAME

    if app in _REGISTERED:
        return
    app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True,
             ignore_result=True, max_retries=None)(_task_body)
    _REGISTERED.add(app)


def _task_body(task: Task, body: object) -> str:
    try:
        return run_message(task.app, body)
    except (StorageError, LockTimeoutError) as exc:
        logger.warning("triggers message for %r: the store failed, trying again in %g s: %s",
                       body, STORE_RETRY_COUNTDOWN, exc)
        raise task.retry(exc=exc, countdown=STORE_RETRY_COUNTDOWN) from exc


def run_message(app: Celery, body: object) -> str:
    """Act on one received message; returns what happened (for logs and tests).

    ``"ran"``, ``"waiting"`` (sent again for when the lease ends),
    ``"stale"`` (a duplicate of an attempt that already started), ``"done"``
    (nothing left to run) or ``"unknown"`` (no such instance).
    """
    from triggers_celery.runner import runner_for_app

    message = RunMessage.from_data(body)
    runner = runner_for_app(app)
    storage = storage_from_config(message.uid, runner.storage_config_for(message))
    try:
        try:
            instance = storage[message.instance]
        except InstanceNotFoundError:
            logger.error("session %r has no instance %r; dropping the message",
                         message.uid, message.instance)
            return "unknown"
        now = storage.now()
        wait = run_leases.remaining(instance, now)
        if wait:
            routing = runner.routing_for(instance.config)
            routing.pop("countdown", None)
            routing.pop("retry_countdown", None)
            runner.send(message, countdown=wait + LEASE_MARGIN, routing=routing)
            return "waiting"
        if instance.can_run and message.attempt <= run_leases.attempt_of(instance):
            logger.info("session %r: %s is scheduled for attempt %d; attempt %d's message is stale",
                        message.uid, message.instance, run_leases.attempt_of(instance) + 1,
                        message.attempt)
            return "stale"
        if not instance.can_run and not run_leases.expired(instance, now):
            return "done"
        manager = trigger_managers.get(runner.manager_name, storage, runner=runner,
                                       runners={"celery": runner}, run_lease_ttl=runner.run_lease_ttl)
        manager.run_instance(message.instance)
        return "ran"
    finally:
        storage.close()
