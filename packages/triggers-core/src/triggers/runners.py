"""Task runners: where and when a scheduled instance runs.

The manager saves the session with the instance ``scheduled``, then hands its
name to a runner. The runner decides where the work happens and calls
:meth:`TriggerManager.run_instance <triggers.manager.TriggerManager.run_instance>`
there, which marks it running, runs it, records the outcome and cascades.

``eager`` (:class:`EagerTaskRunner`)
    Runs the task at once in the calling thread; a fire returns after every
    cascade finished. The default: simple, and right for scripts and tests.
    It is *inline*: the first instance a save schedules for it is recorded
    ``running`` in that same save, which spares a lock cycle per task.
``threading`` (:class:`ThreadingTaskRunner`)
    Runs each task in a thread of a pool; :meth:`~ThreadingTaskRunner.join_all`
    waits until every task, cascades included, is done.

A task picks its runner by name with the ``using`` directive (entry-point
group ``triggers.runners``, whose registry is :data:`task_runners`).

``BaseTaskRunner`` is :class:`TaskRunner` under its Triggers 2.0 name, for
ported runners.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from triggers.registry import task_runners

if TYPE_CHECKING:
    from triggers.manager import TriggerManager

__all__ = ["BaseTaskRunner", "EagerTaskRunner", "TaskRunner", "ThreadingTaskRunner", "task_runners"]

logger = logging.getLogger(__name__)


class TaskRunner:
    """Base class of runners: implement :meth:`run`.

    ``errors`` collects what escaped ``run_instance`` (a store that failed
    while recording an outcome, say): such errors are logged and kept here,
    never raised into the code that fired the trigger, whose fire was saved.
    """

    inline: bool = False
    """True if :meth:`run` runs the task in the calling thread at once.

    The manager then records the first instance it schedules for this runner
    as ``running`` in the very save that schedules it, instead of spending a
    lock cycle of :meth:`TriggerManager.run_instance
    <triggers.manager.TriggerManager.run_instance>` on that. Set it only on
    runners whose :meth:`run` calls ``run_instance`` before returning.
    """

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def run(self, manager: TriggerManager, instance_name: str) -> None:
        """Arrange for ``manager.run_instance(instance_name)`` to be called."""
        raise NotImplementedError

    def join_all(self, timeout: float | None = None) -> bool:
        """Wait until every task this runner started is done; True if all are."""
        return True

    def close(self) -> None:
        """Release threads or connections the runner holds."""


BaseTaskRunner = TaskRunner
"""Triggers 2.0's name for :class:`TaskRunner`, kept for ported runners.

A 2.0 runner's ``run(manager, task_instance)`` becomes ``run(manager,
instance_name)``: the manager has saved the instance ``scheduled``, and the
runner arranges for ``manager.run_instance(instance_name)`` to be called.
"""


class EagerTaskRunner(TaskRunner):
    """Runs tasks immediately, in the thread that scheduled them."""

    inline = True

    def run(self, manager: TriggerManager, instance_name: str) -> None:
        manager.run_instance(instance_name)


class ThreadingTaskRunner(TaskRunner):
    """Runs tasks in a thread pool; ``join_all()`` waits for cascades too.

    ``max_workers`` (default 4) bounds the threads.
    """

    def __init__(self, max_workers: int = 4) -> None:
        super().__init__()
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="triggers-task")
        self._idle = threading.Condition()
        self._pending = 0

    def run(self, manager: TriggerManager, instance_name: str) -> None:
        with self._idle:
            future = self._executor.submit(manager.run_instance, instance_name)  # raises once closed
            self._pending += 1
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        error = future.exception()
        if error is not None:
            logger.error("task runner thread failed", exc_info=error)
            self.errors.append(error)
        # A cascade started by this task was counted (in run()) before this
        # task is uncounted, so the count reaches zero only when all are done.
        with self._idle:
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    def join_all(self, timeout: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def close(self) -> None:
        self.join_all()
        self._executor.shutdown(wait=True)
