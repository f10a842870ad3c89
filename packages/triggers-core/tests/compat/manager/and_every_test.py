"""Port of Triggers 2.0's tests/manager/and_every_test.py (MIT License, (c) 2017 EFL Global).

Only the plumbing changed (see ``compat/conftest.py``); every configuration,
fire and expectation is the original's.
"""

from __future__ import annotations

from compat_support import PortedTestCase

from triggers.manager import trigger_managers
from triggers.testing import PassThruTask


class TriggerManagerAndEveryTestCase(PortedTestCase):
    """Tasks that may run more than once (``andEvery``)."""

    def setUp(self) -> None:
        self.manager = trigger_managers.get("default", storage=self.storage, runner=self.runner)

    def test_tasks_are_one_shot_by_default(self) -> None:
        """Without andEvery, a trigger fired again does not run the task again."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["_finishStep"],
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("_finishStep", {"counter": 1})
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "_finishStep": {"counter": 1},
            },
        })

        self.manager.fire("_finishStep", {"counter": 2, "extra": "foo"})
        self.manager.join_all()

        # No second run, and the first one's result is kept.
        self.assertInstanceMissing("t_alpha#1")
        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "_finishStep": {"counter": 1},
            },
        })

    def test_and_every(self) -> None:
        """Each fire of the andEvery trigger runs the task once more."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": [],
                "andEvery": "_finishStep",
                "run": PassThruTask.name,
            },
            "t_bravo": {
                "after": [],
                "andEvery": "_finishStep",
                "run": PassThruTask.name,
                "withParams": {
                    "_finishStep": {"name": "observations"},
                    "extra": {"stuff": "arbitrary"},
                },
            },
            # Listens to another trigger.
            "t_charlie": {
                "after": [],
                "andEvery": "dataReceived",
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("_finishStep")
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "_finishStep": {},
            },
        })

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "_finishStep": {"name": "observations"},
                "extra": {"stuff": "arbitrary"},
            },
        })

        self.assertInstanceMissing("t_charlie#0")

        # A task whose instances are all resolved is resolved, andEvery or not.
        self.assertUnresolvedTasks(["t_charlie"])
        self.assertUnresolvedInstances([])

        self.manager.fire("_finishStep")
        self.manager.join_all()

        # A new instance of each, run with the new fire.
        self.assertInstanceFinished("t_alpha#1", {
            "kwargs": {
                "_finishStep": {},
            },
        })

        self.assertInstanceFinished("t_bravo#1", {
            "kwargs": {
                "_finishStep": {"name": "observations"},
                "extra": {"stuff": "arbitrary"},
            },
        })

        self.assertInstanceMissing("t_charlie#0")
        self.assertUnresolvedTasks(["t_charlie"])
        self.assertUnresolvedInstances([])

    def test_kwargs(self) -> None:
        """Each run receives the kwargs of its own fire."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": [],
                "andEvery": "_finishStep",
                "run": PassThruTask.name,
            },
            "t_bravo": {
                "after": [],
                "andEvery": "_finishStep",
                "run": PassThruTask.name,
                "withParams": {
                    "_finishStep": {
                        "name": "observations",
                        "status": "clone",
                    },
                    "extra": {"stuff": "arbitrary"},
                },
            },
            "t_charlie": {
                "after": [],
                "andEvery": "dataReceived",
                "run": PassThruTask.name,
            },
        })

        self.manager.fire(
            trigger_name="_finishStep",
            trigger_kwargs={"name": "Dolly", "greeting": "Hello"},
        )
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "_finishStep": {
                    "greeting": "Hello",
                    "name": "Dolly",
                },
            },
        })

        # Fired kwargs merged over withParams, for the fired trigger only.
        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "_finishStep": {
                    "greeting": "Hello",
                    "name": "Dolly",
                    "status": "clone",
                },
                "extra": {"stuff": "arbitrary"},
            },
        })

        self.assertInstanceMissing("t_charlie#0")
        self.assertUnresolvedTasks(["t_charlie"])
        self.assertUnresolvedInstances([])

        self.manager.fire(
            trigger_name="_finishStep",
            trigger_kwargs={"name": "Dave", "greeting": "Goodbye"},
        )
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#1", {
            "kwargs": {
                "_finishStep": {
                    "greeting": "Goodbye",
                    "name": "Dave",
                },
            },
        })

        self.assertInstanceFinished("t_bravo#1", {
            "kwargs": {
                "_finishStep": {
                    "greeting": "Goodbye",
                    "name": "Dave",
                    "status": "clone",
                },
                "extra": {"stuff": "arbitrary"},
            },
        })

        # The first run's result is untouched.
        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "_finishStep": {
                    "greeting": "Hello",
                    "name": "Dolly",
                },
            },
        })

        self.assertUnresolvedTasks(["t_charlie"])
        self.assertUnresolvedInstances([])

    def test_complex_trigger(self) -> None:
        """andEvery with other triggers in after."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived"],
                "andEvery": "creditsDepleted",
                "run": PassThruTask.name,
            },
            "t_bravo": {
                "after": ["dataReceived"],
                "andEvery": "creditsDepleted",
                "run": PassThruTask.name,
                "withParams": {
                    "dataReceived": {"name": "Han"},
                    "calibration": {"name": "Greedo"},
                },
            },
            # Also needs a trigger that never fires.
            "t_charlie": {
                "after": ["dataReceived", "registerComplete"],
                "andEvery": "creditsDepleted",
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("dataReceived")
        self.manager.join_all()

        # Instances hold the kwargs so far; none can run yet.
        self.assertInstanceUnstarted("t_alpha#0")
        self.assertInstanceUnstarted("t_bravo#0")
        self.assertInstanceUnstarted("t_charlie#0")
        self.assertUnresolvedTasks(["t_alpha", "t_bravo", "t_charlie"])
        self.assertUnresolvedInstances(["t_alpha#0", "t_bravo#0", "t_charlie#0"])

        self.manager.fire("creditsDepleted")
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "dataReceived": {},
                "creditsDepleted": {},
            },
        })

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "calibration": {"name": "Greedo"},
                "dataReceived": {"name": "Han"},
                "creditsDepleted": {},
            },
        })

        self.assertInstanceUnstarted("t_charlie#0")
        self.assertUnresolvedTasks(["t_charlie"])
        self.assertUnresolvedInstances(["t_charlie#0"])

        # Firing one of the after triggers again makes no new instance.
        self.manager.fire("dataReceived")
        self.manager.join_all()

        self.assertInstanceMissing("t_alpha#1")
        self.assertInstanceMissing("t_bravo#1")
        self.assertUnresolvedTasks(["t_charlie"])
        self.assertUnresolvedInstances(["t_charlie#0"])

        # The andEvery trigger does.
        self.manager.fire("creditsDepleted")
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#1", {
            "kwargs": {
                "dataReceived": {},
                "creditsDepleted": {},
            },
        })

        self.assertInstanceFinished("t_bravo#1", {
            "kwargs": {
                "calibration": {"name": "Greedo"},
                "dataReceived": {"name": "Han"},
                "creditsDepleted": {},
            },
        })

        # registerComplete never fired: both t_charlie instances wait.
        self.assertInstanceUnstarted("t_charlie#0")
        self.assertInstanceUnstarted("t_charlie#1")
        self.assertUnresolvedTasks(["t_charlie"])
        self.assertUnresolvedInstances(["t_charlie#0", "t_charlie#1"])

    def test_complex_trigger_kwargs(self) -> None:
        """andEvery with other triggers, each fire with kwargs of its own."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["creditsDepleted"],
                "andEvery": "dataReceived",
                "run": PassThruTask.name,
            },
            "t_bravo": {
                "after": ["creditsDepleted"],
                "andEvery": "dataReceived",
                "run": PassThruTask.name,
                "withParams": {
                    "dataReceived": {
                        "name": "Rainbow Dash",
                        "species": "unknown",
                    },
                    "creditsDepleted": {"name": "Twilight Sparkle"},
                    "calibration": {"name": "Fluttershy"},
                },
            },
            "t_charlie": {
                "after": ["creditsDepleted", "registerComplete"],
                "andEvery": "dataReceived",
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("dataReceived", {"name": "Rarity", "leader": False})
        self.manager.join_all()

        self.assertInstanceUnstarted("t_alpha#0")
        self.assertInstanceUnstarted("t_bravo#0")
        self.assertInstanceUnstarted("t_charlie#0")
        self.assertUnresolvedTasks(["t_alpha", "t_bravo", "t_charlie"])
        self.assertUnresolvedInstances(["t_alpha#0", "t_bravo#0", "t_charlie#0"])

        # Without kwargs.
        self.manager.fire("creditsDepleted")
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "dataReceived": {
                    "leader": False,
                    "name": "Rarity",
                },
                "creditsDepleted": {},
            },
        })

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "dataReceived": {
                    "leader": False,
                    "name": "Rarity",
                    "species": "unknown",
                },
                "creditsDepleted": {"name": "Twilight Sparkle"},
                "calibration": {"name": "Fluttershy"},
            },
        })

        self.assertInstanceUnstarted("t_charlie#0")
        self.assertUnresolvedTasks(["t_charlie"])
        self.assertUnresolvedInstances(["t_charlie#0"])

        self.manager.fire(
            trigger_name="dataReceived",
            trigger_kwargs={"leader": True, "name": "Big Macintosh"},
        )
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#1", {
            "kwargs": {
                "dataReceived": {
                    "leader": True,
                    "name": "Big Macintosh",
                },
                "creditsDepleted": {},
            },
        })

        # creditsDepleted's params are kept for the new instance too.
        self.assertInstanceFinished("t_bravo#1", {
            "kwargs": {
                "dataReceived": {
                    "leader": True,
                    "name": "Big Macintosh",
                    "species": "unknown",
                },
                "creditsDepleted": {"name": "Twilight Sparkle"},
                "calibration": {"name": "Fluttershy"},
            },
        })

        self.assertInstanceUnstarted("t_charlie#0")
        self.assertInstanceUnstarted("t_charlie#1")
        self.assertUnresolvedTasks(["t_charlie"])
        self.assertUnresolvedInstances(["t_charlie#0", "t_charlie#1"])

    def test_cascade(self) -> None:
        """Each run of an andEvery task cascades to andEvery tasks after it."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": [],
                "andEvery": "dataReceived",
                "run": PassThruTask.name,
            },
            "t_bravo": {
                "after": [],
                "andEvery": "t_alpha",
                "run": PassThruTask.name,
            },
            "t_charlie": {
                "after": [],
                "andEvery": "t_alpha",
                "run": PassThruTask.name,
                "withParams": {
                    # Merged with t_alpha's result, not replacing it.
                    "t_alpha": {
                        "foo": "bar",
                        "kwargs": {"hacked": True},
                    },
                    "geek_pun": {"baz": "luhrmann"},
                },
            },
        })

        self.manager.fire("dataReceived")
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "dataReceived": {},
            },
        })

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {},
                    },
                },
            },
        })

        self.assertInstanceFinished("t_charlie#0", {
            "kwargs": {
                "t_alpha": {
                    "foo": "bar",
                    "kwargs": {
                        "dataReceived": {},
                        "hacked": True,
                    },
                },
                "geek_pun": {"baz": "luhrmann"},
            },
        })

        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

        self.manager.fire("dataReceived")
        self.manager.join_all()

        # New instances all along the cascade.
        self.assertInstanceFinished("t_alpha#1", {
            "kwargs": {
                "dataReceived": {},
            },
        })

        self.assertInstanceFinished("t_bravo#1", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {},
                    },
                },
            },
        })

        self.assertInstanceFinished("t_charlie#1", {
            "kwargs": {
                "t_alpha": {
                    "foo": "bar",
                    "kwargs": {
                        "dataReceived": {},
                        "hacked": True,
                    },
                },
                "geek_pun": {"baz": "luhrmann"},
            },
        })

        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

    def test_cascade_kwargs(self) -> None:
        """Each cascade carries the result of its own run."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": [],
                "andEvery": "dataReceived",
                "run": PassThruTask.name,
            },
            "t_bravo": {
                "after": [],
                "andEvery": "t_alpha",
                "run": PassThruTask.name,
                "withParams": {
                    "t_alpha": {
                        "partitionOnLetter": True,
                        "partitionOnNumber": False,
                    },
                    "arbitrary": {"expected": "maybe"},
                },
            },
            "t_charlie": {
                "after": [],
                "andEvery": "t_alpha",
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("dataReceived", {"rating": "4.5"})
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "dataReceived": {"rating": "4.5"},
            },
        })

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {"rating": "4.5"},
                    },
                    "partitionOnLetter": True,
                    "partitionOnNumber": False,
                },
                "arbitrary": {"expected": "maybe"},
            },
        })

        self.assertInstanceFinished("t_charlie#0", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {"rating": "4.5"},
                    },
                },
            },
        })

        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

        self.manager.fire("dataReceived", {"rating": "3.2", "alternate": True})
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#1", {
            "kwargs": {
                "dataReceived": {
                    "rating": "3.2",
                    "alternate": True,
                },
            },
        })

        self.assertInstanceFinished("t_bravo#1", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {
                            "rating": "3.2",
                            "alternate": True,
                        },
                    },
                    "partitionOnLetter": True,
                    "partitionOnNumber": False,
                },
                "arbitrary": {"expected": "maybe"},
            },
        })

        self.assertInstanceFinished("t_charlie#1", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {
                            "rating": "3.2",
                            "alternate": True,
                        },
                    },
                },
            },
        })

        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

    def test_cascade_complex_trigger(self) -> None:
        """Cascades to andEvery tasks that also wait for other triggers."""
        self.manager.update_configuration({
            # One andEvery trigger per task.
            "t_alpha": {
                "after": ["creditsDepleted"],
                "andEvery": "dataReceived",
                "run": PassThruTask.name,
            },
            # Each run also needs registerComplete.
            "t_bravo": {
                "after": ["registerComplete"],
                "andEvery": "t_alpha",
                "run": PassThruTask.name,
            },
            # Needs a trigger that never fires.
            "t_charlie": {
                "after": ["demo"],
                "andEvery": "t_alpha",
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("dataReceived")
        self.manager.join_all()

        self.assertInstanceUnstarted("t_alpha#0")
        self.assertInstanceMissing("t_bravo#0")
        self.assertInstanceMissing("t_charlie#0")
        self.assertUnresolvedTasks(["t_alpha", "t_bravo", "t_charlie"])
        self.assertUnresolvedInstances(["t_alpha#0"])

        self.manager.fire("creditsDepleted", {"time": 42})
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "dataReceived": {},
                "creditsDepleted": {"time": 42},
            },
        })

        self.assertInstanceUnstarted("t_bravo#0")
        self.assertInstanceUnstarted("t_charlie#0")
        self.assertUnresolvedTasks(["t_bravo", "t_charlie"])
        self.assertUnresolvedInstances(["t_bravo#0", "t_charlie#0"])

        self.manager.fire("registerComplete")
        self.manager.join_all()

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {},
                        "creditsDepleted": {"time": 42},
                    },
                },
                "registerComplete": {},
            },
        })

        self.assertInstanceUnstarted("t_charlie#0")
        self.assertUnresolvedTasks(["t_charlie"])
        self.assertUnresolvedInstances(["t_charlie#0"])

        # t_alpha again: creditsDepleted fired before, so its new instance runs at once.
        self.manager.fire("dataReceived", {"alternate": True})
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#1", {
            "kwargs": {
                "dataReceived": {"alternate": True},
                "creditsDepleted": {"time": 42},
            },
        })

        self.assertInstanceFinished("t_bravo#1", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {"alternate": True},
                        "creditsDepleted": {"time": 42},
                    },
                },
                "registerComplete": {},
            },
        })

        # A second t_charlie instance holds the second cascade; demo never fired.
        self.assertInstanceUnstarted("t_charlie#1")
        self.assertUnresolvedTasks(["t_charlie"])
        self.assertUnresolvedInstances(["t_charlie#0", "t_charlie#1"])

    def test_cascade_one_shot(self) -> None:
        """An andEvery task cascades to a one-shot task: that one runs once."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": [],
                "andEvery": "dataReceived",
                "run": PassThruTask.name,
            },
            # One-shot.
            "t_bravo": {
                "after": ["t_alpha"],
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("dataReceived")
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {"dataReceived": {}},
        })

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {"dataReceived": {}},
                },
            },
        })

        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

        self.manager.fire("dataReceived")
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#1", {
            "kwargs": {"dataReceived": {}},
        })

        # One-shot: no second instance.
        self.assertInstanceMissing("t_bravo#1")
        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

    def test_cascade_one_shot_reverse(self) -> None:
        """A one-shot task is the andEvery trigger of another."""
        self.manager.update_configuration({
            # One-shot.
            "t_alpha": {
                "after": ["dataReceived"],
                "run": PassThruTask.name,
            },
            "t_bravo": {
                "after": [],
                "andEvery": "t_alpha",
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("dataReceived")
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {"dataReceived": {}},
        })

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {"dataReceived": {}},
                },
            },
        })

        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

        self.manager.fire("dataReceived")
        self.manager.join_all()

        # t_alpha runs once only, so it cascades once only.
        self.assertInstanceMissing("t_alpha#1")
        self.assertInstanceMissing("t_bravo#1")
        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

    def test_deferred_kwargs(self) -> None:
        """An andEvery instance made later starts with the kwargs fired by then."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["creditsDepleted"],
                "andEvery": "dataReceived",
                "run": PassThruTask.name,
            },
            "t_bravo": {
                "after": ["creditsDepleted"],
                "andEvery": "t_alpha",
                "run": PassThruTask.name,
            },
            # The other way round: andEvery on the trigger t_alpha needs once.
            "t_charlie": {
                "after": ["t_alpha"],
                "andEvery": "creditsDepleted",
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("creditsDepleted", {"counter": 1})
        self.manager.join_all()

        self.assertInstanceUnstarted("t_alpha#0")
        self.assertInstanceUnstarted("t_bravo#0")
        self.assertInstanceUnstarted("t_charlie#0")
        self.assertUnresolvedTasks(["t_alpha", "t_bravo", "t_charlie"])
        self.assertUnresolvedInstances(["t_alpha#0", "t_bravo#0", "t_charlie#0"])

        self.manager.fire("creditsDepleted", {"counter": 2})
        self.manager.join_all()

        self.assertInstanceUnstarted("t_alpha#0")
        self.assertInstanceUnstarted("t_bravo#0")
        self.assertInstanceUnstarted("t_charlie#0")

        # t_charlie#0 holds counter 1 already, so counter 2 makes t_charlie#1.
        self.assertInstanceUnstarted("t_charlie#1")
        self.assertUnresolvedTasks(["t_alpha", "t_bravo", "t_charlie"])
        self.assertUnresolvedInstances(["t_alpha#0", "t_bravo#0", "t_charlie#0", "t_charlie#1"])

        self.manager.fire("dataReceived", {"counter": 3})
        self.manager.join_all()

        # Made when creditsDepleted had fired with counter 1.
        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "dataReceived": {"counter": 3},
                "creditsDepleted": {"counter": 1},
            },
        })

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {"counter": 3},
                        "creditsDepleted": {"counter": 1},
                    },
                },
                "creditsDepleted": {"counter": 1},
            },
        })

        self.assertInstanceFinished("t_charlie#0", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {"counter": 3},
                        "creditsDepleted": {"counter": 1},
                    },
                },
                "creditsDepleted": {"counter": 1},
            },
        })

        # Made by the second creditsDepleted fire, with counter 2.
        self.assertInstanceFinished("t_charlie#1", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {"counter": 3},
                        "creditsDepleted": {"counter": 1},
                    },
                },
                "creditsDepleted": {"counter": 2},
            },
        })

        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

        self.manager.fire("dataReceived", {"counter": 4})
        self.manager.join_all()

        # Made now, when the latest creditsDepleted had counter 2.
        self.assertInstanceFinished("t_alpha#1", {
            "kwargs": {
                "dataReceived": {"counter": 4},
                "creditsDepleted": {"counter": 2},
            },
        })

        # And a t_bravo instance for t_alpha#1's cascade.
        self.assertInstanceFinished("t_bravo#1", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {"counter": 4},
                        "creditsDepleted": {"counter": 2},
                    },
                },
                "creditsDepleted": {"counter": 2},
            },
        })

        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])
