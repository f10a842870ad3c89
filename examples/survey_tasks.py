"""The survey's tasks: what runs when the survey application's triggers fire.

The application (see ``survey.py``) fires ``firstPageReceived`` with the
respondent's details and browser, ``pageReceived`` with every page of
answers, ``questionnaireComplete`` with the profile questionnaire and, at the
end, ``sessionFinalized``. These tasks turn those raw form submissions into
clean records. Each one receives a :class:`~triggers.tasks.TaskContext` and
returns a mapping, which becomes the kwargs of the trigger the finished task
fires under its own name: the subject record returned by ``import_subject``
is what ``import_responses`` and ``compute_score`` receive as
``t_importSubject``.

A task raises on input it cannot make sense of (``ValueError`` naming the
page, question and value) rather than guessing: the instance is then marked
failed, and an operator can replay it with corrected kwargs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from triggers import InstanceStatus, TaskContext

__all__ = [
    "PAGES",
    "QUESTIONS",
    "PageAnswers",
    "Question",
    "compute_score",
    "import_browser_metadata",
    "import_responses",
    "import_subject",
    "parse_page",
    "parse_user_agent",
]


# --------------------------------------------------------------------------
# The questionnaire (application code, not session data: every session of
# this survey scores against the same questions)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One Likert-scale question: answers are whole numbers from 1 to ``scale``."""

    text: str
    weight: int
    scale: int = 5


QUESTIONS: dict[str, Question] = {
    "q1": Question("The instructions were clear", weight=1),
    "q2": Question("I would recommend this course", weight=2),
    "q3": Question("The pace was right for me", weight=1),
    "q4": Question("The material is relevant to my work", weight=3),
    "q5": Question("Questions were answered well", weight=2),
    "q6": Question("The exercises helped me learn", weight=1),
}

PAGES: dict[int, tuple[str, ...]] = {1: ("q1", "q2"), 2: ("q3", "q4"), 3: ("q5", "q6")}
"""Which questions each page of the survey asks."""


@dataclass(frozen=True)
class PageAnswers:
    """One page's answers after parsing: ``answers`` maps question ids to 1..scale."""

    page: int
    answers: dict[str, int]
    unanswered: tuple[str, ...]


_WHOLE_NUMBER = re.compile(r"[0-9]+")


def _parse_answer(page: int, question_id: str, raw: object) -> int | None:
    """A form value as an int in the question's range; None when left blank."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    question = QUESTIONS[question_id]
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and _WHOLE_NUMBER.fullmatch(raw.strip()):
        value = int(raw.strip())
    if value is None or not 1 <= value <= question.scale:
        raise ValueError(
            f"page {page}: answer to {question_id} is {raw!r}, "
            f"not a whole number from 1 to {question.scale}"
        )
    return value


def parse_page(page_kwargs: Mapping[str, Any]) -> PageAnswers:
    """Parse the kwargs of a ``pageReceived`` trigger: ``{"page": N, "answers": {...}}``.

    Blank answers (and questions of the page that are missing altogether) are
    reported as unanswered; answers that are not a number on the scale, and
    answers to questions the page does not ask, raise ``ValueError``.
    """
    page = page_kwargs.get("page")
    if not isinstance(page, int) or isinstance(page, bool) or page not in PAGES:
        raise ValueError(f"page number must be one of {sorted(PAGES)}, not {page!r}")
    raw_answers = page_kwargs.get("answers")
    if not isinstance(raw_answers, Mapping):
        raise ValueError(f"page {page}: 'answers' must be a mapping, not {raw_answers!r}")
    unexpected = sorted(set(raw_answers) - set(PAGES[page]))
    if unexpected:
        raise ValueError(f"page {page}: answers to questions it does not ask: {unexpected}")
    answers: dict[str, int] = {}
    unanswered: list[str] = []
    for question_id in PAGES[page]:
        value = _parse_answer(page, question_id, raw_answers.get(question_id))
        if value is None:
            unanswered.append(question_id)
        else:
            answers[question_id] = value
    return PageAnswers(page, answers, tuple(unanswered))


# --------------------------------------------------------------------------
# t_importSubject: after firstPageReceived and questionnaireComplete
# --------------------------------------------------------------------------

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}")
_SUBJECT_ID = re.compile(r"S-[0-9]{4,}")
_CONSENT = {"yes": True, "y": True, "true": True, "no": False, "n": False, "false": False}


def _required_text(source: Mapping[str, Any], key: str, where: str) -> str:
    value = source.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {key!r} is required, got {value!r}")
    return value.strip()


def import_subject(context: TaskContext) -> dict[str, Any]:
    """Build the subject record from the first page and the profile questionnaire.

    Form input is normalised (ids upper-case, names title-cased with single
    spaces, e-mail addresses lower-case) and validated, so every later task
    can rely on the record.
    """
    log = context.get_logger_context()
    first_page = context.trigger_kwargs["firstPageReceived"]
    profile = context.trigger_kwargs["questionnaireComplete"]
    subject = first_page.get("subject")
    if not isinstance(subject, Mapping):
        raise ValueError(f"firstPageReceived: 'subject' must be a mapping, not {subject!r}")

    subject_id = _required_text(subject, "id", "firstPageReceived subject").upper()
    if not _SUBJECT_ID.fullmatch(subject_id):
        raise ValueError(f"firstPageReceived subject: id {subject_id!r} is not like 'S-1042'")
    name = " ".join(_required_text(subject, "name", "firstPageReceived subject").split()).title()
    email = _required_text(subject, "email", "firstPageReceived subject").lower()
    if not _EMAIL.fullmatch(email):
        raise ValueError(f"firstPageReceived subject: {email!r} is not an e-mail address")

    birth_year_raw = str(profile.get("birthYear", "")).strip()
    this_year = datetime.now(UTC).year
    if not _WHOLE_NUMBER.fullmatch(birth_year_raw) or not 1900 <= int(birth_year_raw) <= this_year:
        raise ValueError(f"questionnaireComplete: birthYear {profile.get('birthYear')!r} is not a year")
    country = _required_text(profile, "country", "questionnaireComplete").upper()
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise ValueError(f"questionnaireComplete: country {country!r} is not an ISO 3166 code")
    consent = _CONSENT.get(str(profile.get("consent", "")).strip().lower())
    if consent is None:
        raise ValueError(f"questionnaireComplete: consent {profile.get('consent')!r} is not yes/no")

    log.info("imported subject %s (%s, %s)", subject_id, name, country)
    return {
        "subjectId": subject_id,
        "name": name,
        "email": email,
        "birthYear": int(birth_year_raw),
        "country": country,
        "consent": consent,
        "startedAt": first_page.get("startedAt"),
    }


# --------------------------------------------------------------------------
# t_importResponses: after t_importSubject, andEvery pageReceived
# --------------------------------------------------------------------------


def import_responses(context: TaskContext) -> dict[str, Any]:
    """Import one page of answers for the subject (one instance per page).

    Raises ``ValueError`` on a malformed answer; warns about blank ones,
    which the score counts as zero.
    """
    log = context.get_logger_context()
    subject = context.trigger_kwargs["t_importSubject"]
    parsed = parse_page(context.trigger_kwargs["pageReceived"])
    for question_id in parsed.unanswered:
        log.warning(
            "page %d: question %s (%r) was left unanswered; it scores 0",
            parsed.page, question_id, QUESTIONS[question_id].text,
        )
    log.info("page %d: imported %d answer(s) for %s", parsed.page, len(parsed.answers),
             subject["subjectId"])
    return {
        "subjectId": subject["subjectId"],
        "page": parsed.page,
        "answers": parsed.answers,
        "answered": len(parsed.answers),
        "unanswered": list(parsed.unanswered),
    }


# --------------------------------------------------------------------------
# t_importBrowserMetadata: after firstPageReceived, unless isEmbeddedApplication
# --------------------------------------------------------------------------

# Order matters: Edge and Opera user agents also say "Chrome", and Chrome's
# also says "Safari".
_BROWSERS = (
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/([\d.]+)")),
    ("Opera", re.compile(r"OPR/([\d.]+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/([\d.]+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/([\d.]+)")),
    ("Safari", re.compile(r"Version/([\d.]+).*Safari/")),
)
_SYSTEMS = (
    ("Windows", re.compile(r"Windows NT ([\d.]+)")),
    ("iOS", re.compile(r"(?:iPhone|iPad|CPU) OS ([\d_]+)")),
    ("macOS", re.compile(r"Mac OS X ([\d_.]+)")),
    ("Android", re.compile(r"Android ([\d.]+)")),
    ("Linux", re.compile(r"Linux()")),
)


def parse_user_agent(user_agent: str) -> dict[str, Any]:
    """Browser, operating system and their versions from a User-Agent header.

    Unknown parts are ``None``: the header is free text, so a parser can only
    recognise the common shapes.
    """
    result: dict[str, Any] = {"browser": None, "browserVersion": None, "os": None, "osVersion": None}
    for browser, pattern in _BROWSERS:
        match = pattern.search(user_agent)
        if match:
            result["browser"], result["browserVersion"] = browser, match.group(1)
            break
    for system, pattern in _SYSTEMS:
        match = pattern.search(user_agent)
        if match:
            result["os"], result["osVersion"] = system, match.group(1).replace("_", ".") or None
            break
    result["mobile"] = "Mobile" in user_agent
    return result


def import_browser_metadata(context: TaskContext) -> dict[str, Any]:
    """Record which browser the respondent used (not run inside the embedded app,
    whose user agent says nothing about the respondent's device)."""
    log = context.get_logger_context()
    user_agent = str(context.trigger_kwargs["firstPageReceived"].get("userAgent") or "")
    metadata = parse_user_agent(user_agent)
    if metadata["browser"] is None or metadata["os"] is None:
        log.warning("could not recognise user agent %r", user_agent)
    else:
        log.info("browser %s %s on %s %s", metadata["browser"], metadata["browserVersion"],
                 metadata["os"], metadata["osVersion"])
    return metadata


# --------------------------------------------------------------------------
# t_computeScore: after t_importSubject and sessionFinalized, withParams
# --------------------------------------------------------------------------


def compute_score(context: TaskContext) -> dict[str, Any]:
    """Score the subject's answers, 0 to 100, from every page imported so far.

    The answers come from the session itself: the finished
    ``t_importResponses`` instances and the page each received (a replayed
    instance's clone carries the corrected page). A page imported twice counts
    once, the latest import winning. Questions left blank or on pages never
    imported score 0. ``withParams`` supplies ``scoring`` (``weighted`` or
    ``unweighted``) and ``passMark``; kwargs fired with ``sessionFinalized``
    override them.
    """
    log = context.get_logger_context()
    params = context.trigger_kwargs["sessionFinalized"]
    subject = context.trigger_kwargs["t_importSubject"]
    scoring = params.get("scoring", "weighted")
    if scoring not in ("weighted", "unweighted"):
        raise ValueError(f"sessionFinalized: scoring {scoring!r} is not 'weighted' or 'unweighted'")
    pass_mark = params.get("passMark", 60)
    if isinstance(pass_mark, bool) or not isinstance(pass_mark, int | float) or not 0 <= pass_mark <= 100:
        raise ValueError(f"sessionFinalized: passMark {pass_mark!r} is not a number from 0 to 100")

    answers: dict[str, int] = {}
    pages_seen: set[int] = set()
    still_open: list[str] = []
    for instance in context.manager.storage.instances_of_task("t_importResponses"):
        if instance.status is InstanceStatus.FINISHED:
            page = parse_page(instance.kwargs["pageReceived"])
            pages_seen.add(page.page)
            for question_id in PAGES[page.page]:  # the latest import of a page wins
                answers.pop(question_id, None)
            answers.update(page.answers)
        elif not instance.is_resolved:
            still_open.append(f"{instance.name} ({instance.status.value})")
    if still_open:
        log.warning("scoring while %s not imported; their answers score 0", ", ".join(still_open))
    missing_pages = sorted(set(PAGES) - pages_seen)
    if missing_pages:
        log.warning("pages %s were never imported; their questions score 0", missing_pages)

    def weight(question_id: str) -> int:
        return QUESTIONS[question_id].weight if scoring == "weighted" else 1

    points = sum(
        weight(question_id) * (value - 1) / (QUESTIONS[question_id].scale - 1)
        for question_id, value in answers.items()
    )
    score = round(100 * points / sum(weight(question_id) for question_id in QUESTIONS), 1)
    passed = score >= pass_mark
    log.info("%s scored %.1f (%s, pass mark %s): %s", subject["subjectId"], score, scoring,
             pass_mark, "passed" if passed else "failed")
    return {
        "subjectId": subject["subjectId"],
        "scoring": scoring,
        "score": score,
        "passMark": pass_mark,
        "passed": passed,
        "answered": len(answers),
        "questions": len(QUESTIONS),
        "pages": sorted(pages_seen),
    }
