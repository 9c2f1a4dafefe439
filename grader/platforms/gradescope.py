"""Gradescope: `grade export gradescope` writes autograder.zip; in its container, results.json."""

from __future__ import annotations

import json
import math
import tempfile
import zipfile
from pathlib import Path

from grader import __version__, export
from grader.contract import Message, msg
from grader.i18n import Speaker
from grader.models import (
    GRADER_ERROR,
    GRADER_ERROR_LABEL,
    GRADER_ERROR_NOTE,
    Assignment,
    SubmissionResult,
)
from grader.platforms import staging

# Gradescope's own timeout must leave the kit's wall clock room to stop a hanging hand-in
# and still write its results: setup of the run plus scoring, far above what they take.
TIMEOUT_MARGIN = 60  # seconds
# The run_autograder's last resort, when Python cannot even start the kit: fixed English.
FALLBACK = {
    "score": 0,
    "output": "GRADER ERROR: the autograder could not start (it needs python3 3.11 or later, "
    "set up by setup.sh). This is a fault of the grader, not of the submitted code: tell "
    "your TA; this 0 is not a grade.",
    "output_format": "text",
    "visibility": "visible",
    "extra_data": {"status": GRADER_ERROR},
}


def results(result: SubmissionResult, speaker: Speaker) -> dict:
    """Gradescope's results.json of a graded hand-in (grader.export's, reasons in Markdown,
    each check's visibility from assignment.toml)."""
    return export.gradescope_results(result, speaker)


def kit_failure(reason: Message, speaker: Speaker) -> dict:
    """Gradescope's results.json when the kit failed before it could judge anything. Its
    format has no place for "not graded": the score is 0 and the output says it is none."""
    head = msg("{label}: {reason}", label=GRADER_ERROR_LABEL, reason=reason)
    note = msg("The score 0 is not a grade: tell your TA, who can grade it again.")
    return {
        "score": 0,
        "output": "\n\n".join(speaker.text(m, "\n\n") for m in (head, GRADER_ERROR_NOTE, note)),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {"status": GRADER_ERROR},
    }


def timeout(wall_clock: float) -> int:
    return math.ceil(wall_clock) + TIMEOUT_MARGIN


def write_zip(
    out: Path,
    assignment: Assignment,
    lang: str,
    wall_clock: float,
    wheels: Path | None = None,
) -> list[str]:
    """autograder.zip: setup.sh and run_autograder at its root, the wheels, their unpacker
    and the grading settings. Returns the names of the wheels."""
    values = {
        "version": __version__,
        "assignment": assignment.name,
        "entry": assignment.entry,
        "timeout": str(timeout(wall_clock)),
        "fallback": json.dumps(FALLBACK, indent=2),
    }
    with tempfile.TemporaryDirectory(prefix="sg-gradescope-") as tmp:
        root = Path(tmp)
        found = staging.stage(root, assignment, lang, wall_clock, wheels)
        for name in ("setup.sh", "run_autograder"):
            staging.write_script(root / name, staging.template(name, **values))
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    info = zipfile.ZipInfo.from_file(path, path.relative_to(root).as_posix())
                    info.compress_type = zipfile.ZIP_DEFLATED
                    zf.writestr(info, path.read_bytes())
        partial.replace(out)
    return [w.path.name for w in found]
