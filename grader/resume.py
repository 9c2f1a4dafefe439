"""A batch that resumes: which submissions a saved result already grades, and their files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from grader import export, i18n, render, saved, score
from grader.cli_report import navigation
from grader.contract import Message, msg
from grader.i18n import Speaker
from grader.models import (
    GRADER_ERROR,
    NOT_GRADABLE,
    Assignment,
    FileHash,
    Provenance,
    Submission,
    SubmissionResult,
)

REPORT_FILE, GRADESCOPE_FILE = "report.html", "results.json"


@dataclass(frozen=True)
class Now:
    """What a grading now would be: the kit, the assignment and the sandbox it runs in."""

    kit_version: str
    assignment: Assignment
    sandbox: str


def _p(s: saved.Saved) -> Provenance:
    """The saved result's provenance (the rule "provenance" comes before any use of it)."""
    assert s.result.provenance is not None
    return s.result.provenance


def _same_sandbox(s: saved.Saved, sub: Submission, now: Now) -> bool:
    """A TA who switches sandbox expects a regrade; a hand-in that cannot be graded never
    ran in one (its verdict is the same in every sandbox)."""
    return _p(s).sandbox == now.sandbox or s.result.status == NOT_GRADABLE


def _hashes(files: tuple[FileHash, ...]) -> tuple[tuple[str, int, str], ...]:
    return tuple((f.path, f.size, f.sha256) for f in files)


# Each rule a saved result must meet to be kept, with the name of what differs when it does
# not (for tests and for a TA reading the code, never shown: the terminal only counts).
# In order: a rule may rely on the ones before it (provenance present).
RULES: tuple[tuple[str, Callable[[saved.Saved, Submission, Now], bool]], ...] = (
    # A student's `grade check` ran only the visible checks: not a TA's grading.
    ("self_check", lambda s, sub, now: not s.self_check),
    ("submission", lambda s, sub, now: s.result.submission.id == sub.id),
    ("provenance", lambda s, sub, now: s.result.provenance is not None),
    ("kit_version", lambda s, sub, now: _p(s).kit_version == now.kit_version),
    ("assignment", lambda s, sub, now: s.result.assignment.name == now.assignment.name),
    (
        "assignment_hash",
        lambda s, sub, now: _p(s).assignment_hash == now.assignment.digest,
    ),
    # Nothing hashed (a zip that would not unpack, a folder over the limits): nothing to
    # compare, and grading it again runs nothing.
    ("no_files", lambda s, sub, now: bool(sub.hashes)),
    ("files", lambda s, sub, now: _hashes(_p(s).files) == _hashes(sub.hashes)),
    ("sandbox", _same_sandbox),
    # The kit's or the machine's fault (an engine lost): this one still needs grading.
    ("grader_error", lambda s, sub, now: s.result.status != GRADER_ERROR),
)


def differs(found: saved.Saved, sub: Submission, now: Now) -> str | None:
    """Why the saved result `found` does not grade `sub` as a grading now would (the name
    of the first rule it breaks), or None when it does: it is kept, not graded again."""
    for name, holds in RULES:
        if not holds(found, sub, now):
            return name
    return None


def split(
    subs: list[Submission], out: Path, now: Now, regrade: bool = False
) -> tuple[list[SubmissionResult], list[Submission]]:
    """(the results kept, the submissions to grade). A result.json that is missing, cannot
    be read (half-written, another schema) or differs from a grading now is not kept. A kept
    result is read back with the submission as discovered now (same files; its prepared
    copy is the one at hand, for a report rendered again)."""
    if regrade:
        return [], list(subs)
    kept, todo = [], []
    for sub in subs:
        try:
            found = saved.read_saved(out / sub.id / saved.RESULT_FILE)
        except saved.SavedError:
            todo.append(sub)
            continue
        if differs(found, sub, now) is None:
            # In brief: a report to render again reads the whole result once more.
            kept.append(replace(found.result, submission=sub).in_brief())
        else:
            todo.append(sub)
    return kept, todo


def kept_line(kept: int, total: int) -> Message:
    """What the terminal says once, before grading starts, when some results are kept."""
    return msg(
        "{kept} of {total} submissions already graded with the same files, assignment and kit "
        "version: kept (--regrade grades them again)",
        kept=kept,
        total=total,
    )


def now_for(assignment: Assignment, sandbox: str) -> Now:
    # Through the module: the kit's version as score() records it in each provenance.
    return Now(score.kit_version(), assignment, sandbox)


def reported(out: Path) -> list[str]:
    """The submissions graded into `out` before (each has a folder named by its id): the
    class its reports' previous/next links were made for, as far as it can be known."""
    return sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))


def keep_reports(
    kept: list[SubmissionResult], out: Path, ids: list[str], before: list[str], sp: Speaker
) -> None:
    """A kept submission's report.html is left as it is, unless it is missing or its links
    to the previous and next student would change (a student added to or gone from the
    class since): then it is rendered again, from the saved result."""
    for result in kept:
        ident = result.submission.id
        nav = navigation(ids, ident)
        path = out / ident / REPORT_FILE
        same = ident in before and navigation(before, ident) == nav
        if not (path.is_file() and same):
            whole = saved.read_saved(out / ident / saved.RESULT_FILE).result
            whole = replace(whole, submission=result.submission)
            render.write_report(whole, path, speaker=sp, nav=nav)


def write_submission(
    result: SubmissionResult,
    out: Path,
    self_check: bool = False,
    speaker: Speaker | None = None,
    nav: dict | None = None,
) -> Path:
    """The submission's results.json (Gradescope's), its report.html and, last, its
    result.json (everything, for `grade report`), each written atomically. result.json marks
    the submission done for a batch that resumes: it goes first (an older grading's) and
    comes back last, so a grading stopped in between is graded again, never taken as done."""
    sp = speaker or i18n.speaker()
    folder = out / result.submission.id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / saved.RESULT_FILE).unlink(missing_ok=True)
    export.write_results_json(result, folder / GRADESCOPE_FILE, sp)
    render.write_report(result, folder / REPORT_FILE, self_check=self_check, speaker=sp, nav=nav)
    saved.write(result, folder / saved.RESULT_FILE, self_check)
    return folder / REPORT_FILE
