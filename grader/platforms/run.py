"""Grades a platform container's one hand-in in place and writes the platform's results file.

`python3 -m grader.platforms.run PLATFORM --config FILE --submission DIR --results FILE`, where
PLATFORM is gradescope or prairielearn."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

from grader import i18n
from grader.assignment import course_folders, load_assignment
from grader.contract import Message, msg, verbatim
from grader.discover import single
from grader.export import write_atomically
from grader.i18n import Speaker
from grader.models import SubmissionResult
from grader.platforms import gradescope, prairielearn

# Each platform's results file, made of a graded result or of why the kit itself failed.
PLATFORMS = {
    "gradescope": (gradescope.results, gradescope.kit_failure),
    "prairielearn": (prairielearn.results, prairielearn.kit_failure),
}
# The grading folder is root's and traversable, never listable: the student's copy lies below
# it and its uid must reach that copy, not list what else is there.
SCRATCH_MODE = 0o711
RESULTS_MODE = 0o700  # the results folder: root's alone, like the file in it
TRACE_CHARS = 2_000  # of a kit fault's traceback, kept in the results for the course staff


def grade(config: dict, submission: Path, scratch: Path) -> SubmissionResult:
    """discover → in-place sandbox → score for the container's one hand-in, every check."""
    # Imported here: grader.cli brings the terminal's libraries, needed only once grading.
    from grader.cli import grade_one
    from grader.sandbox import make_sandbox

    folders = course_folders(config.get("assignments", ()))
    assignment = load_assignment(config["assignment"], folders=folders)
    sub = single(submission, assignment.entry, scratch / "submission")
    wall_clock = float(config["wall_clock"])
    sandbox = make_sandbox("inplace", wall_clock, scratch=scratch / "runs")
    return grade_one(sandbox, assignment, sub, (), wall_clock)


def kit_fault(exc: BaseException) -> Message:
    """A fault of the kit or the machine, as the results say it: the error, then where."""
    where = "".join(traceback.format_exception(exc))[-TRACE_CHARS:]
    return msg(
        "the grader failed before it could judge anything ({error}); it is not the "
        "student's fault.\n{trace}",
        error=verbatim(repr(exc)),
        trace=verbatim(where),
    )


def write(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, RESULTS_MODE)
    write_atomically(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    os.chmod(path, 0o600)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m grader.platforms.run")
    p.add_argument("platform", choices=sorted(PLATFORMS))
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--submission", required=True, type=Path)
    p.add_argument("--results", required=True, type=Path)
    ns = p.parse_args(argv)
    to_results, to_failure = PLATFORMS[ns.platform]
    sp: Speaker = i18n.speaker("en")
    scratch = Path(tempfile.mkdtemp(prefix="socketgrade-"))
    try:
        config = json.loads(ns.config.read_text(encoding="utf-8"))
        sp = Speaker(config.get("lang", "en"))
        base = ns.config.parent
        config["assignments"] = [str(base / a) for a in config.get("assignments", ())]
        os.chmod(scratch, SCRATCH_MODE)
        payload = to_results(grade(config, ns.submission, scratch), sp)
    except Exception as exc:
        # Whatever failed, the platform gets a results file that says so: an empty results
        # folder reads as a crash with no reason to anyone looking.
        print(sp.render(kit_fault(exc), "en"), file=sys.stderr)
        payload = to_failure(kit_fault(exc), sp)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write(ns.results, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
