"""An application's registrations, for ``TRIGGERS_IMPORT=cli_registrations``."""

from core_lease_tasks import HoldingRunner

from triggers.registry import task_runners

task_runners.register("holding", HoldingRunner)
