"""Bad configuration is refused naming the task and directive; nothing is saved."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from triggers.errors import ConfigurationError
from triggers.manager import TriggerManager
from triggers.storage import TriggerStorageBackend
from triggers_conformance.base import TASKS, ConformanceBase
from triggers_conformance.guarantees import guarantee

Reload = Callable[[str], TriggerStorageBackend]

BAD_CONFIGURATIONS: dict[str, tuple[dict[str, Any], str]] = {
    "missing_after": ({"run": f"{TASKS}.noop"}, "after"),
    "missing_run": ({"after": ["x"]}, "run"),
    "after_is_a_string": ({"after": "x", "run": f"{TASKS}.noop"}, "after"),
    "after_is_empty": ({"after": [], "run": f"{TASKS}.noop"}, "after"),
    "after_holds_a_number": ({"after": ["x", 3], "run": f"{TASKS}.noop"}, "after"),
    "run_is_a_number": ({"after": ["x"], "run": 42}, "run"),
    "unless_is_a_string": ({"after": ["x"], "run": f"{TASKS}.noop", "unless": "y"}, "unless"),
    "and_every_is_a_list": ({"after": ["x"], "run": f"{TASKS}.noop", "andEvery": ["y"]}, "andEvery"),
    "with_params_not_nested": ({"after": ["x"], "run": f"{TASKS}.noop", "withParams": {"x": 1}}, "withParams"),
    "unknown_runner": ({"after": ["x"], "run": f"{TASKS}.noop", "using": "no-such-runner"}, "using"),
}


class ConfigurationTests(ConformanceBase):
    @guarantee("configuration")
    @pytest.mark.parametrize("case", sorted(BAD_CONFIGURATIONS))
    def test_bad_configuration_is_refused_and_nothing_saved(
        self, storage: TriggerStorageBackend, reload: Reload, case: str
    ) -> None:
        directives, directive = BAD_CONFIGURATIONS[case]
        manager = TriggerManager(storage)
        manager.update_configuration({"t_good": self.task("noop", after=["x"])})
        with pytest.raises(ConfigurationError) as refused:
            manager.update_configuration({
                "t_fine": self.task("noop", after=["y"]),
                "t_broken": directives,
            })
        message = str(refused.value)
        assert "t_broken" in message and directive in message, message
        assert sorted(reload(storage.uid).tasks) == ["t_good"]
        assert sorted(storage.tasks) == ["t_good"]

    @guarantee("configuration")
    def test_configuration_must_be_a_mapping(self, storage: TriggerStorageBackend) -> None:
        with pytest.raises(ConfigurationError, match="must map task names"):
            TriggerManager(storage).update_configuration(["t_a"])  # type: ignore[arg-type]
