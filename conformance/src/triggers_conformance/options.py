"""Bad backend options are refused with a message naming them; nothing is written.

A backend's test class lists its own bad options in ``bad_options``: each is
passed to ``make_storage`` on top of the options that reach its store, so
only options that *add* to those belong here (a missing or conflicting
connection option stays in the backend's own tests). Without a list the test
is skipped with the reason :data:`NO_BAD_OPTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import pytest

from triggers.errors import ConfigurationError
from triggers.storage import TriggerStorageBackend
from triggers_conformance.base import ConformanceBase, StorageFactory
from triggers_conformance.guarantees import guarantee

NO_BAD_OPTIONS = "no bad_options listed: give (options, message regex) pairs to run this test"
"""The skip reason of the bad-options test on a test class without a list."""


class BadOptionTests(ConformanceBase):
    bad_options: ClassVar[Sequence[tuple[Mapping[str, Any], str]]] = ()
    """Optional: ``(options, regex)`` pairs; each must raise a matching ConfigurationError."""

    @guarantee("options")
    def test_bad_options_are_refused_and_nothing_written(
        self,
        make_storage: StorageFactory,
        reload: Callable[[str], TriggerStorageBackend],
        uid: str,
    ) -> None:
        if not self.bad_options:
            pytest.skip(NO_BAD_OPTIONS)
        storage = make_storage(uid)
        with storage.acquire_lock():
            storage.metadata["kept"] = True
            storage.save()
        storage.close()
        for options, message in self.bad_options:
            with pytest.raises(ConfigurationError, match=message):
                make_storage(uid, **options)
        assert reload(uid).metadata == {"kept": True}
