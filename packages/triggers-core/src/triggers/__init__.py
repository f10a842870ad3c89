"""Triggers: the observer pattern for distributed stacks.

An application fires named triggers into a *session*; the session's task
configurations say which tasks run after which triggers; the
:class:`TriggerManager` applies triggers, runs tasks and cascades. Session
state lives in a storage backend selected by name from the
``triggers.storage_backends`` entry-point group.
"""

import logging as _logging

from triggers.capabilities import Capabilities
from triggers.errors import (
    BackendNotFoundError,
    ConfigurationError,
    ContentionError,
    CorruptSessionError,
    InstanceNotFoundError,
    InvalidTransitionError,
    LeaseExpiredError,
    LockNotHeldError,
    LockTimeoutError,
    RetryTask,
    SchemaError,
    SessionLimitError,
    StaleSessionError,
    StorageError,
    TriggersError,
    UnsupportedValueError,
    ValueDomainError,
)
from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.registry import (
    manager_from_config,
    storage_backends,
    storage_from_config,
    storage_from_env,
    task_runners,
    trigger_managers,
)
from triggers.runners import EagerTaskRunner, TaskRunner, ThreadingTaskRunner
from triggers.storage import (
    LoadScope,
    SessionChanges,
    StoredSession,
    StoredText,
    TriggerStorageBackend,
)
from triggers.tasks import TaskContext, TriggerTask
from triggers.types import InstanceStatus, TaskConfig, TaskInstance

__version__ = "0.1.0"

# A library's loggers stay silent until the application configures logging.
_logging.getLogger("triggers").addHandler(_logging.NullHandler())

__all__ = [
    "BackendNotFoundError",
    "Capabilities",
    "ConfigurationError",
    "ContentionError",
    "CorruptSessionError",
    "EagerTaskRunner",
    "InstanceNotFoundError",
    "InstanceStatus",
    "InvalidTransitionError",
    "LeaseExpiredError",
    "LoadScope",
    "LockNotHeldError",
    "LockTimeoutError",
    "MemoryStorageBackend",
    "RetryTask",
    "SchemaError",
    "SessionChanges",
    "SessionLimitError",
    "StaleSessionError",
    "StorageError",
    "StoredSession",
    "StoredText",
    "TaskConfig",
    "TaskContext",
    "TaskInstance",
    "TaskRunner",
    "ThreadingTaskRunner",
    "TriggerManager",
    "TriggerStorageBackend",
    "TriggerTask",
    "TriggersError",
    "UnsupportedValueError",
    "ValueDomainError",
    "manager_from_config",
    "storage_backends",
    "storage_from_config",
    "storage_from_env",
    "task_runners",
    "trigger_managers",
]
