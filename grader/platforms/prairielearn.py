"""PrairieLearn: `grade export prairielearn` writes a grader image; in it, results.json."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from grader import __version__, export
from grader.contract import Message, msg
from grader.i18n import Speaker
from grader.models import (
    GRADER_ERROR,
    GRADER_ERROR_LABEL,
    GRADER_ERROR_NOTE,
    NOT_GRADABLE,
    Assignment,
    CheckResult,
    SubmissionResult,
)
from grader.platforms import staging

ENTRYPOINT = "/opt/socketgrade/entry.sh"
# PrairieLearn kills a job after `timeout` seconds (at most 600) and then shows no results:
# the kit's own wall clock must stop a hanging hand-in first, with room to write them.
TIMEOUT_MARGIN = 30  # seconds
TIMEOUT_MAX = 600
OUTPUT_MAX = 4_000  # characters of one test's output; PrairieLearn takes 1 MB in all
FALLBACK = {
    "gradable": False,
    "score": 0,
    "message": "GRADER ERROR: the grader could not start (the image lacks python3 3.11 or "
    "later, or was not built from its Dockerfile). This is not your code's fault.",
    "format_errors": ["the grader could not start"],
}


def timeout(wall_clock: float) -> int:
    return min(TIMEOUT_MAX, math.ceil(wall_clock) + TIMEOUT_MARGIN)


def _story(check: CheckResult, speaker: Speaker) -> str:
    """What the check did and saw, one line each, as plain text (PrairieLearn shows it
    preformatted)."""
    lines = []
    for entry in check.story:
        at = f"+{entry.t:.3f} s " if entry.t is not None else ""
        lines.append(f"{at}{entry.kind}: {speaker.text(entry.text, ' / ')}")
    for m in check.measurements:
        lines.append(f"{speaker.text(m.label, ' / ')}: {m.value}{m.unit and ' ' + m.unit}")
    text = "\n".join(lines)
    return text if len(text) <= OUTPUT_MAX else text[: OUTPUT_MAX - 1] + "…"


def _test(check: CheckResult, speaker: Speaker, folder: Path | None) -> dict:
    spec = check.spec
    return {
        "name": speaker.pick(spec.title.en or spec.id, spec.title.zh, " / "),
        "description": speaker.pick(spec.explain.en, spec.explain.zh, " / "),
        "points": check.score,
        "max_points": spec.points,
        "message": export.check_output(check, speaker, folder, timeline=False),
        "output": "" if check.passed else _story(check, speaker),
    }


def results(result: SubmissionResult, speaker: Speaker) -> dict:
    """PrairieLearn's results.json: score = points / max. A hand-in that cannot be graded,
    and a grading the kit failed on, are `gradable: false` with the reason, so that the
    attempt is not counted (a blank is not a grade)."""
    tests = [_test(c, speaker, result.submission.folder) for c in result.checks]
    # Gradescope's summary (status, score, sandbox) is this message too.
    message = export.gradescope_results(result, speaker)["output"]
    payload: dict = {
        "gradable": result.status not in (NOT_GRADABLE, GRADER_ERROR),
        "score": result.score / result.max_score if result.max_score else 0.0,
        "message": message,
        "tests": tests,
    }
    if result.status == NOT_GRADABLE:
        payload["format_errors"] = [speaker.text(result.submission.problem)]
    elif result.status == GRADER_ERROR:
        payload["format_errors"] = [speaker.text(GRADER_ERROR_NOTE)]
    return payload


def kit_failure(reason: Message, speaker: Speaker) -> dict:
    head = msg("{label}: {reason}", label=GRADER_ERROR_LABEL, reason=reason)
    return {
        "gradable": False,
        "score": 0.0,
        "message": speaker.text(head, "\n\n"),
        "format_errors": [speaker.text(GRADER_ERROR_NOTE)],
    }


def info_json(image: str, wall_clock: float) -> dict:
    return {
        "gradingMethod": "External",
        "externalGradingOptions": {
            "enabled": True,
            "image": image,
            "entrypoint": ENTRYPOINT,
            "timeout": timeout(wall_clock),
            "enableNetworking": False,
        },
    }


def default_image(assignment: Assignment) -> str:
    return f"socketgrade-{assignment.name}:{__version__}"


def write_folder(
    out: Path,
    assignment: Assignment,
    lang: str,
    wall_clock: float,
    image: str,
    wheels: Path | None = None,
) -> list[str]:
    """The build context (Dockerfile, entry.sh, wheels), info.json and README.md in `out`.
    Returns the names of the wheels."""
    shutil.rmtree(out / "wheels", ignore_errors=True)
    shutil.rmtree(out / "assignments", ignore_errors=True)
    found = staging.stage(out, assignment, lang, wall_clock, wheels)
    (out / "assignments").mkdir(exist_ok=True)  # COPY needs it, empty for the kit's own
    values = {
        "version": __version__,
        "assignment": assignment.name,
        "entry": assignment.entry,
        "image": image,
        "timeout": str(timeout(wall_clock)),
        "wall_clock": f"{wall_clock:g}",
        "fallback": json.dumps(FALLBACK, indent=2),
    }
    (out / "Dockerfile").write_text(staging.template("Dockerfile", **values), encoding="utf-8")
    staging.write_script(out / "entry.sh", staging.template("entry.sh", **values))
    (out / "README.md").write_text(staging.template("README.md", **values), encoding="utf-8")
    info = json.dumps(info_json(image, wall_clock), indent=2) + "\n"
    (out / "info.json").write_text(info, encoding="utf-8")
    return [w.path.name for w in found]
