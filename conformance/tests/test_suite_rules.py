"""The suite's own rules: what a backend author can and cannot do with it."""

from __future__ import annotations

import pytest

from triggers_conformance import BackendConformance, standard_test_names

MEMORY_SUBCLASS = """
import uuid
import pytest
from triggers.memory import MemoryStorageBackend
from triggers_conformance import BackendConformance

class TestMine(BackendConformance):
    xfail_tests = {XFAIL}

    @pytest.fixture
    def make_storage(self):
        namespace = uuid.uuid4().hex
        return lambda uid, **options: MemoryStorageBackend(uid, namespace=namespace, **options)
"""


def test_overriding_a_standard_test_is_refused() -> None:
    with pytest.raises(TypeError, match=r"test_new_session_is_empty.*xfail_tests"):

        class TestSneaky(BackendConformance):
            def test_new_session_is_empty(self) -> None:
                pass


def test_deleting_a_standard_test_is_refused() -> None:
    with pytest.raises(TypeError, match="test_debug_repr_is_plain_json"):

        class TestSneaky(BackendConformance):
            test_debug_repr_is_plain_json = None


def test_xfail_tests_must_name_standard_tests_and_give_reasons() -> None:
    with pytest.raises(TypeError, match="unknown tests"):

        class TestTypo(BackendConformance):
            xfail_tests = {"test_no_such_thing": "reason"}

    with pytest.raises(TypeError, match="needs a reason"):

        class TestNoReason(BackendConformance):
            xfail_tests = {"test_new_session_is_empty": " "}


def test_standard_tests_are_discoverable() -> None:
    names = standard_test_names()
    assert "test_processes_firing_into_one_session" in names
    assert all(name.startswith("test_") for name in names)


def test_a_subclass_runs_every_test_and_reports_capabilities(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine=MEMORY_SUBCLASS.replace("{XFAIL}", "{}"))
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    total = len(standard_test_names())
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0
    assert outcomes["passed"] + outcomes["skipped"] >= total
    result.stdout.fnmatch_lines([
        "*Triggers conformance: capability report*",
        "test_mine.TestMine",
        "*passed*no lost updates under concurrency*",
        "*not claimed*declared limits probed*",
    ])


def test_xfail_tests_become_strict_xfails(pytester: pytest.Pytester) -> None:
    xfail = '{"test_new_session_is_empty": "pretend this store cannot"}'
    pytester.makepyfile(test_mine=MEMORY_SUBCLASS.replace("{XFAIL}", xfail))
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "-k", "test_new_session_is_empty")
    # The test passes, so a strict xfail turns it into a failure: an expected
    # failure that stops failing must be noticed.
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*pretend this store cannot*"])


def test_missing_make_storage_fails_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_empty="""
from triggers_conformance import BackendConformance

class TestForgotten(BackendConformance):
    pass
"""
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "-k", "test_new_session_is_empty")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*must define a `make_storage` fixture*"])


def test_installed_backend_runs_with_no_code(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--pyargs", "triggers_conformance", "-q", "-p", "no:cacheprovider",
        "--triggers-backend", "memory", "--triggers-option", "namespace=pyargs-run",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0
    assert outcomes["passed"] + outcomes["skipped"] >= len(standard_test_names())
    result.stdout.fnmatch_lines(["*TestInstalledBackend*", "*passed*manager semantics end to end*"])


def test_installed_backend_without_a_name_is_skipped_with_a_hint(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--pyargs", "triggers_conformance", "-q", "-rs", "-p", "no:cacheprovider", "-k", "session_is_empty"
    )
    result.stdout.fnmatch_lines(["*pass --triggers-backend NAME*"])


def test_overriding_a_suite_fixture_or_helper_is_refused() -> None:
    with pytest.raises(TypeError, match="'reload'"):

        class TestCachedReload(BackendConformance):
            @pytest.fixture
            def reload(self) -> None:
                pass

    with pytest.raises(TypeError, match="_assert_every_fire_applied_once"):

        class TestLenient(BackendConformance):
            def _assert_every_fire_applied_once(self, *args: object) -> None:
                pass


def test_damaged_data_tests_are_skipped_with_a_hint_without_a_raw_store(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_mine=MEMORY_SUBCLASS.replace("{XFAIL}", "{}"))
    result = pytester.runpytest("-q", "-rs", "-p", "no:cacheprovider", "-k", "damaged")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*no raw store: define a raw_store fixture (a RawStore)*"])
