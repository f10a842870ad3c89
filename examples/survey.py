"""The survey demo: the example workflow of the Triggers documentation, end to end.

A survey application fires triggers into a session while a respondent works
through an online survey; the session's tasks (``survey_tasks``) import the
subject, each page of answers and the browser, and finally compute a score.
On the way one page import fails on a malformed answer and an operator
replays it with the corrected answer, as one would in production. The run
ends with a summary of the session (``survey_report``).

Run it from the repository root as ``./run demo [options]`` (``--help`` for
the options).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from triggers import (
    InstanceStatus,
    TaskRunner,
    ThreadingTaskRunner,
    TriggerManager,
    TriggersError,
    TriggerStorageBackend,
    storage_backends,
)
from triggers.errors import ConfigurationError
from triggers.manager import IDEMPOTENCY_KEYS_KEY
from triggers.runners import EagerTaskRunner
from triggers.storage import TRIGGER_KWARGS_KEY
from triggers.tasks import resolve_task

# The tasks are configured by dotted path ("survey_tasks.import_subject") and
# imported by the manager with importlib, possibly in a worker thread. Python
# puts this directory on sys.path when it runs this file as a script; adding
# it here as well keeps the paths resolvable when the module is imported
# (from a test, say) instead.
EXAMPLES_DIR = Path(__file__).resolve().parent
if str(EXAMPLES_DIR) not in sys.path:
    sys.path.insert(0, str(EXAMPLES_DIR))

from survey_report import describe_instance, describe_score, summarize_session  # noqa: E402

# Where sessions live when --backend is not given: an SQLite file in the
# working directory (git-ignored), so the demo needs no server and no
# settings, and `--session UID` continues a session across runs.
DEFAULT_STORAGE: Mapping[str, Any] = {
    "backend": "sql",
    "options": {"url": "sqlite:///triggers-demo.db"},
}

JOIN_TIMEOUT = 60.0
"""Seconds to wait for the threading runner to finish a step's tasks."""

# --------------------------------------------------------------------------
# The session's tasks: the example of the Triggers documentation
# --------------------------------------------------------------------------

TASK_CONFIGURATION: dict[str, dict[str, Any]] = {
    "t_importSubject": {
        "after": ["firstPageReceived", "questionnaireComplete"],
        "run": "survey_tasks.import_subject",
    },
    "t_importResponses": {
        "after": ["t_importSubject"],
        "andEvery": "pageReceived",
        "run": "survey_tasks.import_responses",
    },
    "t_importBrowserMetadata": {
        "after": ["firstPageReceived"],
        "unless": ["isEmbeddedApplication"],
        "run": "survey_tasks.import_browser_metadata",
    },
    "t_computeScore": {
        "after": ["t_importSubject", "sessionFinalized"],
        "withParams": {"sessionFinalized": {"scoring": "weighted", "passMark": 60}},
        "run": "survey_tasks.compute_score",
    },
}

# --------------------------------------------------------------------------
# What the survey application sends: form submissions, as browsers post them
# --------------------------------------------------------------------------

FIRST_PAGE: dict[str, Any] = {
    "page": 1,
    "subject": {"id": " s-1042 ", "name": "  ada   LOVELACE ", "email": " Ada.Lovelace@Example.ORG "},
    "userAgent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36"
    ),
    "startedAt": datetime(2026, 11, 28, 9, 30, tzinfo=UTC),
}
PAGE_SUBMISSIONS: dict[int, dict[str, Any]] = {
    1: {"page": 1, "answers": {"q1": "4", "q2": "5"}},
    2: {"page": 2, "answers": {"q3": "3", "q4": "4,5"}},  # a double click sent two values
    3: {"page": 3, "answers": {"q5": "5", "q6": ""}},  # q6 left blank
}
PROFILE: dict[str, Any] = {"birthYear": "1990", "country": "gb", "consent": "yes"}

CORRECTIONS: dict[int, dict[str, str]] = {2: {"q4": "4"}}
"""Answers an operator confirmed with the respondent, by page, to replay failed imports with."""


@dataclass(frozen=True)
class Step:
    """One moment of the survey: triggers the application fires, or the operator's repair."""

    name: str
    story: str
    fires: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    repairs: bool = False


STEPS: tuple[Step, ...] = (
    Step("page-1", "the respondent starts the survey and submits page 1",
         fires=(("firstPageReceived", FIRST_PAGE), ("pageReceived", PAGE_SUBMISSIONS[1]))),
    Step("page-2", "page 2 arrives, with a malformed answer",
         fires=(("pageReceived", PAGE_SUBMISSIONS[2]),)),
    Step("questionnaire", "the profile questionnaire is complete",
         fires=(("questionnaireComplete", PROFILE),)),
    Step("page-3", "page 3 arrives, with a question left blank",
         fires=(("pageReceived", PAGE_SUBMISSIONS[3]),)),
    Step("repair", "an operator replays failed page imports with corrected answers", repairs=True),
    Step("finalize", "the session is finalized and scored", fires=(("sessionFinalized", {}),)),
)

# --------------------------------------------------------------------------
# Running the workflow
# --------------------------------------------------------------------------


class SurveyWorkflow:
    """Applies the steps to one session and narrates what each one changed."""

    def __init__(self, manager: TriggerManager, runner: TaskRunner) -> None:
        self.manager = manager
        self.storage = manager.storage
        self.runner = runner

    def configure(self) -> None:
        """Apply the task configuration; idempotent, so safe on a continued session."""
        for name, directives in TASK_CONFIGURATION.items():
            resolve_task(name, directives["run"])  # fail now, not as a failed instance later
        scheduled = self.manager.update_configuration(TASK_CONFIGURATION)
        caught_up = f"; caught up: {', '.join(scheduled)}" if scheduled else ""
        print(f"configured {len(TASK_CONFIGURATION)} tasks{caught_up}")

    def run_step(self, step: Step) -> None:
        print(f"\nstep {step.name}: {step.story}")
        before = self._states()
        for trigger, kwargs in step.fires:
            self._fire(f"{step.name}/{trigger}", trigger, kwargs)
        if step.repairs:
            self._repair()
        self.settle()
        self._print_changes(before)

    def settle(self) -> None:
        """Wait until the runner has run every task (and cascade) started so far.

        The eager runner has nothing to wait for. The demo settles after each
        step so that the operator's repair sees the failure and the score
        sees every page.
        """
        if not self.runner.join_all(timeout=JOIN_TIMEOUT):
            hint = ""
            if type(self.runner).__name__ == "CeleryTaskRunner":
                hint = " (is a Celery worker running? see examples/survey_celery.py)"
            raise TimeoutError(f"tasks still running after {JOIN_TIMEOUT:g} s{hint}")
        if self.runner.errors:
            raise self.runner.errors[0]

    def _fire(self, key: str, trigger: str, kwargs: Mapping[str, Any]) -> None:
        # Only to say so below: the manager itself checks the key under the lock.
        self.storage.invalidate_cache()
        applied = key in (self.storage.metadata.get(IDEMPOTENCY_KEYS_KEY) or [])
        scheduled = self.manager.fire(trigger, kwargs, idempotency_key=key)
        if applied:
            outcome = "already applied to this session, skipped"
        else:
            outcome = f"scheduled {', '.join(scheduled) or 'nothing'}"
        print(f"  fired {trigger} (key {key}): {outcome}")

    def _repair(self) -> None:
        """Replay every failed page import for which a corrected answer is known."""
        self.storage.invalidate_cache()
        failed = [
            instance
            for instance in self.storage.instances_of_task("t_importResponses")
            if instance.status is InstanceStatus.FAILED
        ]
        if not failed:
            print("  no failed page imports")
        for instance in failed:
            page_kwargs = instance.kwargs["pageReceived"]
            corrections = CORRECTIONS.get(page_kwargs.get("page", 0))
            print(f"  {instance.name} failed: {describe_instance(instance)}")
            if not corrections:
                print("    no correction known for this page; left failed")
                continue
            corrected = {**page_kwargs, "answers": {**page_kwargs["answers"], **corrections}}
            # replacement_kwargs replaces *all* of the clone's kwargs, so keep
            # the other triggers it received (t_importSubject) as they were.
            clone = self.manager.replay_failed_instance(
                instance.name, replacement_kwargs={**instance.kwargs, "pageReceived": corrected}
            )
            # The error is understood and dealt with: acknowledge its log.
            self.manager.mark_instance_logs_resolved(instance.name)
            print(f"    replayed as {clone.name} with {json.dumps(corrections)}; "
                  f"marked {instance.name}'s logs resolved")

    def _states(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        self.storage.invalidate_cache()
        return {
            name: (instance.status.value, instance.missing_triggers)
            for name, instance in self.storage.instances.items()
        }

    def _print_changes(self, before: Mapping[str, tuple[str, tuple[str, ...]]]) -> None:
        after = self._states()
        changed = [name for name, state in after.items() if before.get(name) != state]
        width = max((len(name) for name in changed), default=0)
        for name in sorted(changed, key=lambda n: (n.partition("#")[0], int(n.partition("#")[2]))):
            instance = self.storage[name]
            print(f"  {name.ljust(width)}  {instance.status.value:<9}  {describe_instance(instance)}".rstrip())

    def score(self) -> Mapping[str, Any] | None:
        """What t_computeScore returned: the kwargs its finishing fired (session metadata)."""
        fired = self.storage.metadata.get(TRIGGER_KWARGS_KEY) or {}
        result = fired.get("t_computeScore")
        return result if isinstance(result, Mapping) else None


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

EPILOG = f"""\
workflow steps (each fire carries the idempotency key STEP/TRIGGER):
{chr(10).join(f"  {step.name:<14} {step.story}" for step in STEPS)}

continuing a session:
  With --session UID naming a session that already exists on a persistent
  backend, the demo picks it up where it stands instead of starting over:
  the task configuration is applied again (a no-op when unchanged), every
  fire the session has already applied is recognised by its idempotency key
  and skipped rather than applied twice, and the repair step only touches
  instances that are still failed. So a run with --until questionnaire and a
  second run with the same --session finish one survey between them, and
  re-running a finished session changes nothing. Without --session every
  run starts a fresh session (its uid is printed). The default store is the
  SQLite file triggers-demo.db in the working directory; the memory backend
  keeps sessions only while the process lives.

examples:
  ./run demo
  ./run demo --runner threading --verbose
  ./run demo --runner celery    (start a worker first: see examples/survey_celery.py)
  ./run demo --backend memory --option namespace=x
  ./run demo --backend sql --option url=postgresql+psycopg://postgres@127.0.0.1/test
  ./run demo --session s-42 --until questionnaire   (then again without --until)
"""


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value``; the value is JSON when it parses as JSON (5, true, {...}), else a str."""
    key, separator, raw = text.partition("=")
    if not separator or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="./run demo",
        description=(
            "Run the survey example of the Triggers documentation end to end on a "
            "storage backend, then print a summary of the session."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--session", metavar="UID",
        help="session uid to use or continue (default: a fresh uid each run, printed)",
    )
    parser.add_argument(
        "--backend", metavar="NAME", default=None,
        help=(
            "storage backend: an entry-point name in group triggers.storage_backends, "
            f"e.g. {', '.join(storage_backends.names())} (default: {DEFAULT_STORAGE['backend']})"
        ),
    )
    parser.add_argument(
        "--option", metavar="KEY=VALUE", action="append", type=parse_option, default=[],
        help=(
            "backend option, repeatable; VALUE is parsed as JSON when it parses, else taken "
            "as a string (namespace=x, lease_ttl=5). Later ones win. The default backend's "
            "built-in options apply only when --backend is not given"
        ),
    )
    parser.add_argument(
        "--runner", choices=("eager", "threading", "celery"), default="eager",
        help="eager: tasks run in this thread as triggers fire; threading: in a thread pool, "
        "waited for after each step; celery: on Celery workers (start one first: see "
        "examples/survey_celery.py), waited for after each step (default: eager)",
    )
    parser.add_argument(
        "--until", metavar="STEP", choices=[step.name for step in STEPS], default=STEPS[-1].name,
        help=f"stop after this step (one of {', '.join(step.name for step in STEPS)}; "
        f"default: {STEPS[-1].name})",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the tasks' INFO logs too"
    )
    return parser


def open_storage(backend: str | None, uid: str, cli_options: Sequence[tuple[str, Any]]) -> TriggerStorageBackend:
    """The session's storage, built by the registry from a backend name and options."""
    name = backend or str(DEFAULT_STORAGE["backend"])
    options: dict[str, Any] = dict(DEFAULT_STORAGE["options"]) if backend is None else {}
    options.update(cli_options)
    try:
        return storage_backends.get(name, uid, **options)
    except TriggersError:
        raise
    except (TypeError, ValueError) as exc:  # a bad uid, or an option the backend's __init__ refused
        raise ConfigurationError(
            f"storage backend {name!r} cannot open session {uid!r} with options {options}: {exc}"
        ) from exc


class _TaskLogFormatter(logging.Formatter):
    """Names the task instance a log line came from (the task logger's extra field)."""

    def format(self, record: logging.LogRecord) -> str:
        record.origin = getattr(record, "triggers_instance", None) or record.name
        return super().format(record)


def configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_TaskLogFormatter("  log %(levelname)s %(origin)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])


def make_runner(name: str) -> TaskRunner:
    """The runner ``--runner`` names; celery's comes from the demo's Celery app."""
    if name == "threading":
        return ThreadingTaskRunner()
    if name == "celery":
        try:
            from survey_celery import runner as celery_runner
        except ImportError as exc:
            raise ConfigurationError(f"--runner celery needs triggers-celery installed: {exc}") from exc
        return celery_runner
    return EagerTaskRunner()


def run(args: argparse.Namespace) -> int:
    uid = args.session if args.session is not None else f"survey-{uuid.uuid4().hex[:12]}"
    options = list(args.option)
    if args.runner == "celery" and args.backend is None:
        # Workers resolve a relative SQLite path in their own working directory.
        options.insert(0, ("url", f"sqlite:///{Path.cwd() / 'triggers-demo.db'}"))
    storage = open_storage(args.backend, uid, options)
    runner = make_runner(args.runner)
    try:
        existing = len(storage.tasks), len(storage)
        state = "new" if existing == (0, 0) else f"continuing: {existing[0]} tasks, {existing[1]} instances"
        backend_name = args.backend or str(DEFAULT_STORAGE["backend"])
        provider = storage_backends.distribution(backend_name)
        print(f"session {uid} ({state}) on backend {backend_name!r}"
              f"{f' ({provider[0]} {provider[1]})' if provider else ''}, runner {args.runner!r}")

        workflow = SurveyWorkflow(TriggerManager(storage, runner=runner), runner)
        workflow.configure()
        for step in STEPS:
            workflow.run_step(step)
            if step.name == args.until:
                break
        storage.invalidate_cache()  # report what the store holds now
        print()
        print(summarize_session(storage))
        print()
        print(describe_score(workflow.score()))
    finally:
        runner.close()
        storage.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (errors are one line on stderr)."""
    args = build_parser().parse_args(argv)
    # Line-buffer stdout so the narration and the task logs (stderr) stay in
    # order when both are piped to one place.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    configure_logging(args.verbose)
    try:
        return run(args)
    except (TriggersError, TimeoutError) as exc:
        print(f"survey: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("survey: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
