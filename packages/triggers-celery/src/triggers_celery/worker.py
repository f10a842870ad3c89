"""The worker side: the one Celery task that runs a Triggers instance.

It is registered with ``acks_late`` (the message is acknowledged only after
the task returned) and ``reject_on_worker_lost`` (a pool process that dies
puts the message back), so a worker killed mid-task loses nothing: the
message is delivered again. Whatever arrives, the session decides what
happens, under its lock:

* the instance is ``scheduled``: it runs (the manager claims it, runs it,
  records the outcome, cascades);
* it is ``running`` on a live run lease: its worker may be alive, so the
  message is sent again to arrive when the lease would end, and looked at
  then (a finished instance makes it a no-op; an ended lease a takeover);
* it is ``running`` on an ended lease: this message takes it over as the
  next attempt (:mod:`triggers.run_leases`);
* anything else (finished, failed, rescheduled and run by another message):
  nothing happens.

The message's ``attempt`` is the attempt it was sent for, for the logs.
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

    ``"done"`` (this message ran the instance, or found it finished, failed
    or run by another: nothing left for it), ``"waiting"`` (running on a live lease:
    sent again for when the lease ends) or ``"unknown"`` (no such instance).
    The manager decides under the session lock, in the one load its claim
    makes; the state it saw is then read from that load, not loaded again.
    """
    from triggers_celery.runner import named_runners, runner_for_app

    message = RunMessage.from_data(body)
    runner = runner_for_app(app)
    storage = storage_from_config(message.uid, runner.storage_config_for(message))
    try:
        manager = trigger_managers.get(runner.manager_name, storage, runner=runner,
                                       runners=named_runners(app), run_lease_ttl=runner.run_lease_ttl)
        try:
            manager.run_instance(message.instance)
            instance = storage[message.instance]  # as the claim (or the outcome) left it
        except InstanceNotFoundError:
            logger.error("session %r has no instance %r; dropping the message",
                         message.uid, message.instance)
            return "unknown"
        # Our own attempt released its lease when it recorded the outcome, so a
        # lease still running belongs to another attempt that may be alive.
        wait = run_leases.remaining(instance, storage.now())
        if wait:
            routing = runner.routing_for(instance.config)
            routing.pop("countdown", None)
            routing.pop("retry_countdown", None)
            runner.send(message, countdown=wait + LEASE_MARGIN, routing=routing)
            return "waiting"
        return "done"
    finally:
        storage.close()
