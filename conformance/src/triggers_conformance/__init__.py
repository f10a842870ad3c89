"""The Triggers storage-backend conformance suite.

Run it against your backend in three lines::

    class TestMyBackend(BackendConformance):
        @pytest.fixture
        def make_storage(self):
            return lambda uid, **options: MyBackend(uid, **options)

or against any installed backend with no code at all::

    pytest --pyargs triggers_conformance --triggers-backend NAME --triggers-option key=value
"""

import pytest

# The standard tests live in this package's modules, not in test files, so ask
# pytest to rewrite their asserts (for readable failures) before importing them.
pytest.register_assert_rewrite("triggers_conformance")

from triggers_conformance.base import StorageFactory  # noqa: E402
from triggers_conformance.damage import RawStore  # noqa: E402
from triggers_conformance.guarantees import GUARANTEES  # noqa: E402
from triggers_conformance.keyvalue import KeyValueConformance  # noqa: E402
from triggers_conformance.suite import BackendConformance, standard_test_names  # noqa: E402

__all__ = ["GUARANTEES", "BackendConformance", "KeyValueConformance", "RawStore", "StorageFactory", "standard_test_names"]
