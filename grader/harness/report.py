"""What the harness reports of one check, as grader.contract's types: story and program runs."""

from __future__ import annotations

import os
from pathlib import Path

from grader.contract import EXPLAINING, TRACE_KEPT, ProcessReport, Story, StoryLine, TraceEvent
from grader.harness import clients
from grader.harness.launch import TRACER_FILES, StudentProcess

OUTPUT_IN_REPORT = 6000  # characters of the server's output kept per check


def bounded(text: str) -> str:
    """The head and tail of a long output: where it started and how it ended."""
    if len(text) <= OUTPUT_IN_REPORT:
        return text
    half = OUTPUT_IN_REPORT // 2
    return text[:half] + f"\n[... {len(text) - 2 * half} characters not shown ...]\n" + text[-half:]


def clean_traceback(text: str, workdir: Path) -> str:
    """The student's traceback as the student would see it: paths relative to the
    submission, without the tracer's (launcher and hooks) and runpy's frames."""
    tracer = tuple(p.name for p in TRACER_FILES)
    lines = text.replace(str(workdir) + os.sep, "").splitlines()
    out, skip = [], False
    for line in lines:
        if line.startswith('  File "'):
            path = line.split('"')[1]
            skip = path == "<frozen runpy>" or (path.startswith("/") and path.endswith(tracer))
        elif not line.startswith("    "):
            skip = False
        if not skip:
            out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def trace_notes(events: list[dict]) -> tuple[TraceEvent, ...]:
    """The trace events a report explains failures with."""
    parsed = (TraceEvent.from_json(e) for e in events)
    return tuple(e for e in parsed if e.known in EXPLAINING)[:TRACE_KEPT]


def process_report(proc: StudentProcess) -> ProcessReport:
    return ProcessReport(
        stdout=bounded(proc.stdout.text()) if proc.stdout else "",
        stderr=bounded(clean_traceback(proc.stderr.text(), proc.workdir)) if proc.stderr else "",
        output_bytes=(proc.stdout.total if proc.stdout else 0)
        + (proc.stderr.total if proc.stderr else 0),
        exit_code=proc.returncode(),
        trace=trace_notes(proc.trace()),
        ended_by=proc.killed_for or ("grader" if proc.stopped_by_grader else ""),
    )


def story_report(story: clients.Story) -> Story:
    return Story(
        lines=tuple(StoryLine.from_json(line) for line in story.lines),
        measurements=dict(story.measurements),
    )
