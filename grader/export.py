"""Export stage: Gradescope's results.json per submission and the class grades.csv."""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from pathlib import Path

from grader.contract import Message, msg
from grader.i18n import Speaker
from grader.models import (
    GRADER_ERROR,
    GRADER_ERROR_LABEL,
    GRADER_ERROR_NOTE,
    NOT_GRADABLE,
    CheckResult,
    CheckSpec,
    SubmissionResult,
)

# Gradescope documents no size limit for a test's output, but it shows every test's output on
# one page: each is kept to a few KiB (the reason and hint always whole, the timeline cut in
# its middle), and the whole file is bounded too.
TEST_OUTPUT_MAX = 6_000  # characters of one test's output
RESULTS_OUTPUT_MAX = 200_000  # characters of all tests' outputs together
SOURCE_LINE_MAX = 200  # characters of one quoted line of the student's code
TIMELINE_MIN = 200  # characters left for a timeline, below which it is left out
# A reason cites the student's line as file:line (server.py:14).
CITED_LINE = re.compile(r"([\w./-]+\.py):(\d+)")
ENGLISH = Speaker("en")
PARAGRAPH = "\n\n"  # Markdown joins lines with one newline between them into one paragraph


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file beside it, so that a reader never
    finds half a file (a grading stopped by Ctrl-C, two processes on one folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results_json(
    result: SubmissionResult, path: Path, speaker: Speaker | None = None
) -> None:
    text = json.dumps(gradescope_results(result, speaker), indent=2, ensure_ascii=False)
    write_atomically(path, text + "\n")


# --- Gradescope's results.json --------------------------------------------------------------


def _fence(text: str, info: str = "") -> str:
    """A Markdown code block that holds `text` as it is, whatever backticks it contains."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def cited_line(check: CheckResult, folder: Path | None) -> str:
    """`server.py:14: data = conn.recv(1024)` for the first line of the student's code the
    reason cites, read from the hand-in; '' when it cites none or the file is gone."""
    found = CITED_LINE.search(str(check.reason))
    if not found or folder is None:
        return ""
    name, number = found.group(1), int(found.group(2))
    path = folder / name
    try:
        if not path.resolve().is_relative_to(folder.resolve()) or not path.is_file():
            return ""
        with open(path, encoding="utf-8", errors="replace") as fh:
            for i, line in enumerate(fh, 1):
                if i == number:
                    code = line.rstrip("\n").strip()[:SOURCE_LINE_MAX]
                    return f"{name}:{number}: {code}"
    except OSError:
        return ""
    return ""


def _timeline(check: CheckResult, speaker: Speaker, budget: int) -> str:
    """The check's timeline as a code block, its middle left out beyond `budget`."""
    lines = []
    for entry in check.story:
        at = f"+{entry.t:.3f} s " if entry.t is not None else ""
        said = (
            msg("saw:  {line}", line=entry.text)
            if entry.kind == "saw"
            else msg("did:  {line}", line=entry.text)
            if entry.kind == "did"
            else msg("{kind}: {line}", kind=entry.kind, line=entry.text)
        )
        lines.append(at + speaker.text(said, " / "))
    for m in check.measurements:
        lines.append(f"{speaker.text(m.label, ' / ')}: {m.value}{m.unit and ' ' + m.unit}")
    if not lines or budget < TIMELINE_MIN:
        return ""
    while len(lines) > 2 and sum(len(x) + 1 for x in lines) > budget:
        # Cut from the middle: how it began and how it ended say the most.
        del lines[len(lines) // 2]
        lines[len(lines) // 2] = "…"
    heading = speaker.text(msg("Timeline"), " / ")
    return f"**{heading}**\n\n" + _fence("\n".join(lines)[:budget], "text")


def _hint(check: CheckResult, speaker: Speaker) -> list[str]:
    hint = check.spec.hint
    if not (check.hint_applies and hint.en):
        return []
    out = []
    for lang in speaker.langs:
        text = (hint.zh or hint.en) if lang == "zh" else hint.en
        line = speaker.render(msg("Hint: {hint}", hint=text), lang)
        if line not in out:
            out.append(line)
    return out


def check_output(
    check: CheckResult, speaker: Speaker, folder: Path | None = None, timeline: bool = True
) -> str:
    """A test's output in Markdown: the reason, the student's line it cites, the hint, then
    the timeline; at most TEST_OUTPUT_MAX characters."""
    if check.passed:
        head = [speaker.text(msg("Passed."), PARAGRAPH)]
    elif check.grader_error:
        # Worded as before Markdown: the heading and the note on consecutive lines (one
        # paragraph in Markdown), for anyone who matches the first line.
        heading = msg("{label}: {reason}", label=GRADER_ERROR_LABEL, reason=check.reason)
        head = [
            PARAGRAPH.join(
                f"{speaker.render(heading, lang)}\n{speaker.render(GRADER_ERROR_NOTE, lang)}"
                for lang in speaker.langs
            )
        ]
    else:
        head = [speaker.text(check.reason, PARAGRAPH)]
        line = cited_line(check, folder)
        if line:
            head.append(_fence(line, "python"))
        head += _hint(check, speaker)
    text = PARAGRAPH.join(head)[:TEST_OUTPUT_MAX]
    if check.passed or not timeline:
        return text
    story = _timeline(check, speaker, TEST_OUTPUT_MAX - len(text) - 40)
    return f"{text}\n\n{story}" if story else text


def gradescope_test(
    check: CheckResult,
    speaker: Speaker | None = None,
    folder: Path | None = None,
    with_timeline: bool = True,
) -> dict:
    """One entry of Gradescope's `tests` list. Gradescope accepts only "passed" and "failed"
    as a test's status, so a grader error is "failed" there, says so first in its output,
    and carries its own status in extra_data."""
    speaker = speaker or ENGLISH
    output = check_output(check, speaker, folder, with_timeline)
    return {
        "name": speaker.pick(check.spec.title.en or check.spec.id, check.spec.title.zh, " / "),
        "name_format": "text",
        "number": check.spec.id,
        "score": check.score,
        "max_score": check.spec.points,
        "status": "passed" if check.passed else "failed",
        "tags": list(check.spec.tags),
        "output": output,
        "output_format": "md",
        "visibility": check.spec.visibility,
        "extra_data": {
            "measurements": {m.key: m.value for m in check.measurements},
            "fault": check.fault,
            "status": check.status,
        },
    }


def _summary(result: SubmissionResult, speaker: Speaker) -> list[Message | str]:
    status = result.status
    lines: list[Message | str] = []
    if status == GRADER_ERROR:
        ids = ", ".join(c.spec.id for c in result.grader_errors)
        lines.append(
            msg(
                "{label}: the grader could not judge {ids}. {note}",
                label=GRADER_ERROR_LABEL,
                ids=ids,
                note=GRADER_ERROR_NOTE,
            )
        )
    elif status == NOT_GRADABLE:
        lines.append(msg("Not gradable: {problem}", problem=result.submission.problem))
    lines.append(
        msg(
            "{title}: {score} / {max}",
            # The assignment's own title, from its TOML, in the languages shown.
            title=speaker.pick(result.assignment.title.en, result.assignment.title.zh, " / "),
            score=f"{result.score:g}",
            max=f"{result.max_score:g}",
        )
    )
    lines.append(msg("Sandbox: {sandbox}", sandbox=result.sandbox))
    if result.note and result.note != result.submission.problem:
        lines.append(result.note)
    return lines


def gradescope_results(result: SubmissionResult, speaker: Speaker | None = None) -> dict:
    """Gradescope's results.json. Its format has no submission status, so the status is in
    extra_data and, for people, in the first line of the output."""
    speaker = speaker or ENGLISH
    lines = [speaker.text(line) for line in _summary(result, speaker)]
    folder = result.submission.folder
    tests = [gradescope_test(c, speaker, folder) for c in result.checks]
    if sum(len(t["output"]) for t in tests) > RESULTS_OUTPUT_MAX:
        # A class-sized bound on the file: the timelines go, the reasons stay.
        tests = [gradescope_test(c, speaker, folder, with_timeline=False) for c in result.checks]
    return {
        "score": result.score,
        "execution_time": round(result.execution_time, 3),
        "output": "\n".join(lines),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "submission": result.submission.id,
            "status": result.status,
            "sandbox": result.sandbox,
            "limits": result.limits,
            "assignment": result.assignment.name,
            "provenance": result.provenance.to_json() if result.provenance else None,
        },
    }


# --- grades.csv -----------------------------------------------------------------------------


# Excel opens a UTF-8 file without a BOM in the locale's code page (GBK in a Chinese locale)
# and garbles the names; with the BOM it reads UTF-8. csv.DictReader needs
# encoding="utf-8-sig" to drop the BOM from the first column's name.
GRADES_CSV_ENCODING = "utf-8-sig"

# A 0-point check earns nothing either way, so its points column would read 0 for pass and
# fail alike; it is exported as one of these words instead.
PASS, FAIL = "pass", "fail"


def grades_csv_column(spec: CheckSpec) -> str:
    """A check's column name: its id with its max, `echo (15)`, or `waits_its_turn (pass/fail)`
    for a check worth no points.

    The max sits in the header rather than in a second "points" row: a points row would be
    read as one more student by a spreadsheet's sort or filter and by csv.DictReader, while
    the header keeps exactly one row per student."""
    worth = f"{spec.points:g}" if spec.points else f"{PASS}/{FAIL}"
    return f"{spec.id} ({worth})"


def write_grades_csv(results: list[SubmissionResult], path: Path) -> None:
    """One row per student: id, score, max, status, then a column per check.

    `status` is graded, grader_error or not_gradable. A check's cell is its points, or pass /
    fail for a check worth no points. Where the grader failed, the score and the cells of the
    checks it could not judge are left empty: a blank is not a grade, a 0 would read as the
    student's."""
    specs: dict[str, CheckSpec] = {}
    for r in results:
        for c in r.checks:
            specs.setdefault(c.spec.id, c.spec)
    with open(path, "w", newline="", encoding=GRADES_CSV_ENCODING) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(
            ["id", "score", "max", "status", *(grades_csv_column(s) for s in specs.values())]
        )
        for r in sorted(results, key=lambda r: r.submission.id):
            by_id = {c.spec.id: c for c in r.checks}
            status = r.status
            score = "" if status == GRADER_ERROR else f"{r.score:g}"
            writer.writerow(
                [
                    r.submission.id,
                    score,
                    f"{r.max_score:g}",
                    status,
                    *(_cell(by_id.get(i)) for i in specs),
                ]
            )


def _cell(check: CheckResult | None) -> str:
    """Empty where the check did not run or the grader failed on it."""
    if check is None or check.grader_error:
        return ""
    if not check.spec.points:
        return PASS if check.passed else FAIL
    return f"{check.score:g}"
