"""Key-value stores: a whole backend from a handful of primitives.

A :class:`KeyValueStore` subclass implements ``get``, ``get_many``, ``add``,
``set``, ``touch`` and ``delete``; the layout (a head with what a fire needs,
history written once, epochs), fenced saves on a chain of immutable heads,
leases on a lock key and session expiry come from this package. The backend
class is then three lines::

    class RedisStorageBackend(KeyValueStorageBackend):
        store_class = RedisStore
        capabilities = RedisStore.capabilities

One module per concept: :mod:`~triggers.keyvalue.keys` (a session's keys),
:mod:`~triggers.keyvalue.codec` (the stored text),
:mod:`~triggers.keyvalue.layout` (head, segments, index documents),
:mod:`~triggers.keyvalue.chain` (atomic saves on ``add``),
:mod:`~triggers.keyvalue.leases` (the lock), :mod:`~triggers.keyvalue.store`
(the store and its backend class) and :mod:`~triggers.keyvalue.reference`
(a dict-backed store, the reference the layout's tests run on).
"""

from triggers.errors import SessionLostError
from triggers.keyvalue.chain import ChainHeads
from triggers.keyvalue.keys import SessionKeys
from triggers.keyvalue.layout import Loaded, Plan
from triggers.keyvalue.leases import AddLeases, ProcessLeases
from triggers.keyvalue.reference import DictStorageBackend, DictStore
from triggers.keyvalue.store import HeadKeeping, KeyValueStorageBackend, KeyValueStore, Leasing

__all__ = [
    "AddLeases",
    "ChainHeads",
    "DictStorageBackend",
    "DictStore",
    "HeadKeeping",
    "KeyValueStorageBackend",
    "KeyValueStore",
    "Leasing",
    "Loaded",
    "Plan",
    "ProcessLeases",
    "SessionKeys",
    "SessionLostError",
]
