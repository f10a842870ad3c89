"""Port of Triggers 2.0's tests/manager/fire_test.py (MIT License, (c) 2017 EFL Global).

Only the plumbing changed (see ``compat/conftest.py``): the manager and its
storage come from the fixtures, tasks run on a ``ThreadingTaskRunner`` that
``self.manager.join_all()`` waits for, and test data that Triggers 2.0 stored
with pickle is made storable (an aware datetime). Every configuration, fire
and expectation is the original's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from compat_support import PortedTestCase

from triggers.manager import trigger_managers
from triggers.testing import DevNullTask, PassThruTask
from triggers.types import TaskInstance


class TriggerManagerFireTestCase(PortedTestCase):
    """Firing triggers, and what follows from it."""

    def setUp(self) -> None:
        self.manager = trigger_managers.get("default", storage=self.storage, runner=self.runner)

    def test_fire(self) -> None:
        """A fired trigger runs the tasks waiting for it."""
        self.manager.update_configuration({
            # Runs with the fired kwargs only.
            "t_alpha": {
                "after": ["_finishStep"],
                "run": PassThruTask.name,
            },
            # Runs with its withParams merged in.
            "t_bravo": {
                "after": ["_finishStep"],
                "run": PassThruTask.name,
                "withParams": {
                    "_finishStep": {"name": "observations"},
                    "extra": {"stuff": "arbitrary"},
                },
            },
            # Waits for a trigger that never fires.
            "t_charlie": {
                "after": ["dataReceived"],
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

        # withParams entries need not be named after a trigger.
        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "_finishStep": {"name": "observations"},
                "extra": {"stuff": "arbitrary"},
            },
        })

        self.assertInstanceMissing("t_charlie#0")
        self.assertUnresolvedTasks(["t_charlie"])
        # No trigger of t_charlie fired, so it has no instance at all.
        self.assertUnresolvedInstances([])

    def test_fire_kwargs(self) -> None:
        """Fired kwargs reach the tasks, merged over their withParams."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["_finishStep"],
                "run": PassThruTask.name,
            },
            "t_bravo": {
                "after": ["_finishStep"],
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
                "after": ["dataReceived"],
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

        # The fired kwargs win over withParams, key by key, for their trigger only.
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

    def test_fire_complex_trigger(self) -> None:
        """A task that needs several triggers runs once all of them fired."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived", "creditsDepleted"],
                "run": PassThruTask.name,
            },
            "t_bravo": {
                "after": ["dataReceived", "creditsDepleted"],
                "run": PassThruTask.name,
                "withParams": {
                    "dataReceived": {"name": "Han"},
                    "calibration": {"name": "Greedo"},
                },
            },
            # Needs a third trigger, which never fires.
            "t_psych2": {
                "after": ["creditsDepleted", "dataReceived", "registerComplete"],
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("dataReceived")
        self.manager.join_all()

        # Each task got an instance holding the kwargs so far; none can run yet.
        self.assertInstanceUnstarted("t_alpha#0")
        self.assertInstanceUnstarted("t_bravo#0")
        self.assertInstanceUnstarted("t_psych2#0")
        self.assertUnresolvedTasks(["t_alpha", "t_bravo", "t_psych2"])
        self.assertUnresolvedInstances(["t_alpha#0", "t_bravo#0", "t_psych2#0"])

        self.manager.fire("creditsDepleted")
        self.manager.join_all()

        # The task receives the kwargs of both triggers.
        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "dataReceived": {},
                "creditsDepleted": {},
            },
        })

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "dataReceived": {"name": "Han"},
                "calibration": {"name": "Greedo"},
                "creditsDepleted": {},
            },
        })

        # Still waiting for registerComplete.
        self.assertInstanceUnstarted("t_psych2#0")
        self.assertUnresolvedTasks(["t_psych2"])
        self.assertUnresolvedInstances(["t_psych2#0"])

    def test_fire_complex_trigger_kwargs(self) -> None:
        """Several triggers, each fired with its own kwargs (or none)."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived", "creditsDepleted"],
                "run": PassThruTask.name,
            },
            # The dataReceived kwargs fired below are merged over these.
            "t_bravo": {
                "after": ["dataReceived", "creditsDepleted"],
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
            "t_psych2": {
                "after": ["creditsDepleted", "dataReceived", "registerComplete"],
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("dataReceived", {"name": "Rarity", "leader": False})
        self.manager.join_all()

        self.assertInstanceUnstarted("t_alpha#0")
        self.assertInstanceUnstarted("t_bravo#0")
        self.assertInstanceUnstarted("t_psych2#0")
        self.assertUnresolvedTasks(["t_alpha", "t_bravo", "t_psych2"])
        self.assertUnresolvedInstances(["t_alpha#0", "t_bravo#0", "t_psych2#0"])

        # This one without kwargs.
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

        # Only the dataReceived params met fired kwargs; the others pass as configured.
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

        self.assertInstanceUnstarted("t_psych2#0")
        self.assertUnresolvedTasks(["t_psych2"])
        self.assertUnresolvedInstances(["t_psych2#0"])

    def test_fire_cascade(self) -> None:
        """A finished task fires its own name, and the tasks after it run."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived"],
                "run": PassThruTask.name,
            },
            "t_bravo": {
                "after": ["t_alpha"],
                "run": PassThruTask.name,
            },
            "t_charlie": {
                "after": ["t_alpha"],
                "run": PassThruTask.name,
                "withParams": {
                    # Params may add keys to what t_alpha returned, but not
                    # replace what it returned: its ``kwargs`` are merged with
                    # these, recursively.
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

        # t_alpha's result is the kwargs of its cascade.
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

    def test_fire_cascade_kwargs(self) -> None:
        """The finished task's result becomes the kwargs of the tasks it cascades to."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived"],
                "run": PassThruTask.name,
            },
            "t_bravo": {
                "after": ["t_alpha"],
                "run": PassThruTask.name,
                "withParams": {
                    # Added to t_alpha's result.
                    "t_alpha": {
                        "partitionOnLetter": True,
                        "partitionOnNumber": False,
                    },
                    "arbitrary": {"expected": "maybe"},
                },
            },
            "t_charlie": {
                "after": ["t_alpha"],
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("dataReceived", {"inattention": "4.5"})
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "dataReceived": {"inattention": "4.5"},
            },
        })

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {"inattention": "4.5"},
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
                        "dataReceived": {"inattention": "4.5"},
                    },
                },
            },
        })

        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

    def test_fire_cascade_complex_trigger(self) -> None:
        """A cascade reaches tasks that still wait for another trigger."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived", "creditsDepleted"],
                "run": PassThruTask.name,
            },
            # Needs t_alpha and registerComplete.
            "t_bravo": {
                "after": ["t_alpha", "registerComplete"],
                "run": PassThruTask.name,
            },
            # Needs a trigger that never fires.
            "t_charlie": {
                "after": ["t_alpha", "demo"],
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("dataReceived")
        self.manager.join_all()

        # Only t_alpha heard a trigger, so only it has an instance (holding the kwargs).
        self.assertInstanceUnstarted("t_alpha#0")
        self.assertInstanceMissing("t_bravo#0")
        self.assertInstanceMissing("t_charlie#0")
        self.assertUnresolvedTasks(["t_alpha", "t_bravo", "t_charlie"])
        self.assertUnresolvedInstances(["t_alpha#0"])

        self.manager.fire("creditsDepleted")
        self.manager.join_all()

        self.assertInstanceFinished("t_alpha#0", {
            "kwargs": {
                "dataReceived": {},
                "creditsDepleted": {},
            },
        })

        # The cascade made their instances; they wait for their other trigger.
        self.assertInstanceUnstarted("t_bravo#0")
        self.assertInstanceUnstarted("t_charlie#0")

        self.manager.fire("registerComplete")
        self.manager.join_all()

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {},
                        "creditsDepleted": {},
                    },
                },
                "registerComplete": {},
            },
        })

        self.assertInstanceUnstarted("t_charlie#0")
        self.assertUnresolvedTasks(["t_charlie"])
        self.assertUnresolvedInstances(["t_charlie#0"])

    def test_fire_cascade_complex_trigger_reverse(self) -> None:
        """As above, with the other trigger fired before the cascade."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived", "creditsDepleted"],
                "run": PassThruTask.name,
            },
            "t_bravo": {
                "after": ["t_alpha", "registerComplete"],
                "run": PassThruTask.name,
            },
            "t_charlie": {
                "after": ["t_alpha", "demo"],
                "run": PassThruTask.name,
            },
        })

        # registerComplete first, t_alpha's triggers after.
        self.manager.fire("registerComplete")
        self.manager.join_all()

        self.assertInstanceMissing("t_alpha#0")
        self.assertInstanceUnstarted("t_bravo#0")
        self.assertInstanceMissing("t_charlie#0")
        self.assertUnresolvedTasks(["t_alpha", "t_bravo", "t_charlie"])
        self.assertUnresolvedInstances(["t_bravo#0"])

        self.manager.fire("dataReceived")
        self.manager.join_all()

        self.assertInstanceUnstarted("t_alpha#0")
        self.assertInstanceUnstarted("t_bravo#0")
        self.assertInstanceMissing("t_charlie#0")

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
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {},
                        "creditsDepleted": {},
                    },
                },
                "registerComplete": {},
            },
        })

        self.assertInstanceUnstarted("t_charlie#0")
        self.assertUnresolvedTasks(["t_charlie"])
        self.assertUnresolvedInstances(["t_charlie#0"])

    def test_redundant_trigger(self) -> None:
        """A task listens to one of its predecessor's triggers too, to get its kwargs.

        Tasks return what they like; a later task that needs the kwargs an
        earlier one received lists that trigger itself.
        """
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived", "creditsDepleted"],
                "run": DevNullTask.name,
            },
            # dataReceived looks redundant (t_alpha needs it already), but it
            # is how t_bravo receives its kwargs.
            "t_bravo": {
                "after": ["t_alpha", "dataReceived"],
                "run": PassThruTask.name,
            },
        })

        self.manager.fire(
            trigger_name="dataReceived",
            trigger_kwargs={"section_timer": "42", "test_admin": "bob"},
        )
        self.manager.fire("creditsDepleted")
        self.manager.join_all()

        # DevNullTask returns an empty result.
        self.assertInstanceFinished("t_alpha#0", {})

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "t_alpha": {},
                # Only here because t_bravo listens to dataReceived itself.
                "dataReceived": {
                    "section_timer": "42",
                    "test_admin": "bob",
                },
            },
        })

        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

    def test_update_task_metadata(self) -> None:
        """An instance's metadata changes; its status and other timestamps stay."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["__marketingOptIn"],
                "run": DevNullTask.name,
            },
        })

        # Triggers 2.0 pickled a naive datetime; stored values here must be
        # timezone-aware (the value domain), so the moment is given in UTC.
        timestamp = datetime(2017, 3, 13, 12, 22, 47, tzinfo=UTC)

        # 2.0's acquire_lock() yielded the storage; here it yields the lease.
        with self.manager.storage.acquire_lock():
            writable_storage = self.manager.storage
            instance = writable_storage.create_instance(
                task_config=writable_storage.tasks["t_alpha"],
            )

            # As if it had run and finished.
            instance.status = TaskInstance.STATUS_FINISHED

            instance.metadata[TaskInstance.META_TIMESTAMPS] = {
                TaskInstance.TIMESTAMP_CREATED: timestamp,
                TaskInstance.TIMESTAMP_LAST_MODIFIED: timestamp,
                TaskInstance.STATUS_FINISHED: timestamp,
            }

            writable_storage.save()

        self.manager.update_instance_metadata(
            task_instance="t_alpha#0",
            metadata={
                "foo": "bar",
                "baz": "luhrmann",
            },
        )

        instance = self.manager.storage.instances["t_alpha#0"]

        self.assertEqual(instance.metadata["foo"], "bar")
        self.assertEqual(instance.metadata["baz"], "luhrmann")

        # The status is the same.
        self.assertEqual(instance.status, TaskInstance.STATUS_FINISHED)

        # lastModified moved on; the recorded timestamps did not.
        self.assertNotEqual(instance.last_modified, timestamp)

        self.assertEqual(
            instance.metadata[TaskInstance.META_TIMESTAMPS][TaskInstance.TIMESTAMP_CREATED],
            timestamp,
        )

        self.assertEqual(
            instance.metadata[TaskInstance.META_TIMESTAMPS][TaskInstance.STATUS_FINISHED],
            timestamp,
        )
