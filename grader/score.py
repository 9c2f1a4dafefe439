"""Score stage: the harness's report (grader.contract) + the rubric → a SubmissionResult (pure).

Everything that knows the harness's shapes and the tracer's vocabulary is here: what reaches
render is models only, its sentences already made.
"""

from __future__ import annotations

import math
import re
import signal
from dataclasses import replace
from datetime import UTC, datetime

from grader import __version__, requires
from grader.contract import (
    CheckMetadata,
    HarnessReport,
    Message,
    ProcessReport,
    Story,
    TestReport,
    TraceEvent,
    TraceKind,
    as_message,
    msg,
    verbatim,
)
from grader.models import (
    Assignment,
    CheckResult,
    CheckSpec,
    Measurement,
    ProgramRun,
    Provenance,
    RunOutcome,
    Submission,
    SubmissionResult,
    TimelineEntry,
    TraceNote,
)

FAILED_PREFIX = "Failed: "
TRACE_VALUE_MAX = 300  # characters of one tracer value shown (the student writes them)


# --- the tracer's events as sentences -------------------------------------------------------


def _v(value) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= TRACE_VALUE_MAX else text[:TRACE_VALUE_MAX] + " …"


def _where(e: TraceEvent) -> str:
    return _v(e.at) if e.at else "the program"


def _address(requested) -> str:
    if isinstance(requested, (list, tuple)) and len(requested) >= 2:
        host, port = requested[0], requested[1]
        return f"port {_v(port)} on {_v(host) if host else 'all interfaces'}"
    return _v(requested)


def _wait(e: TraceEvent) -> str:
    """A select()/poll() call: whether the loop sleeps in it, from its timeout."""
    selector = e.get("selector")
    unit = " ms" if e.known is TraceKind.POLL_WAIT else ""
    if e.known is TraceKind.POLL_WAIT:
        call = "poll object's poll"
    elif e.known is TraceKind.EPOLL_WAIT:
        call = "epoll object's poll"
    elif e.known is TraceKind.SELECT:  # selectors.*: the tracer names the selector's class
        call = f"{_v(selector or 'selector')}.select"
    else:  # a plain select.select() call
        call = "select.select"
    timeout = e.get("timeout")
    no_timeout = timeout is None or (
        e.known in (TraceKind.POLL_WAIT, TraceKind.EPOLL_WAIT)
        and isinstance(timeout, (int, float))
        and timeout < 0
    )
    if no_timeout:
        return f"{_where(e)} waits in {call}() with no timeout (sleeps until an event)"
    if e.never_sleeps:
        return (
            f"{_where(e)} calls {call}(timeout={_v(timeout)}{unit}), which returns at "
            f"once: the loop never sleeps"
        )
    return f"{_where(e)} waits in {call}(timeout={_v(timeout)}{unit})"


def _fd(e: TraceEvent) -> str:
    return _v(e.get("fd", "?"))


K = TraceKind
# One rule per tracer event, as a table (what each event means in a sentence).
TRACE_NOTES = {
    K.START: lambda e: f"started {_v(e.get('entry', 'the program'))}",
    K.BIND: lambda e: f"{_where(e)} bound fd {_fd(e)} to {_address(e.get('requested'))}",
    K.LISTEN: lambda e: (
        f"{_where(e)} listens on fd {_fd(e)}"
        + (f" (backlog {_v(e.get('backlog'))})" if e.get("backlog") is not None else "")
    ),
    K.REGISTER: lambda e: (
        f"{_where(e)} registered fd {_fd(e)} with {_v(e.get('selector') or 'the selector')}"
    ),
    K.UNREGISTER: lambda e: f"{_where(e)} unregistered fd {_fd(e)}",
    K.MODIFY: lambda e: f"{_where(e)} changed the events watched on fd {_fd(e)}",
    K.CLOSE: lambda e: f"{_where(e)} closed fd {_fd(e)}",
    K.CLOSE_REGISTERED: lambda e: (
        f"{_where(e)} closed fd {_fd(e)} while still registered"
        + (f" (registered at {_v(e.get('registered_at'))})" if e.get("registered_at") else "")
    ),
    K.SELECTOR_NEW: lambda e: f"{_where(e)} made a {_v(e.get('selector') or 'selector')}",
    K.SELECT: _wait,
    K.SELECTOR_CLOSE: lambda e: f"{_where(e)} closed its {_v(e.get('selector') or 'selector')}",
    K.SELECT_CALL: _wait,
    K.POLL_NEW: lambda e: f"{_where(e)} made a select.poll() object",
    K.POLL_REGISTER: lambda e: f"{_where(e)} registered fd {_fd(e)} with its poll object",
    K.POLL_UNREGISTER: lambda e: f"{_where(e)} unregistered fd {_fd(e)} from its poll object",
    K.POLL_MODIFY: lambda e: (
        f"{_where(e)} changed the events its poll object watches on fd {_fd(e)}"
    ),
    K.POLL_WAIT: _wait,
    K.EPOLL_NEW: lambda e: f"{_where(e)} made a select.epoll() object (fd {_v(e.get('epfd'))})",
    K.EPOLL_REGISTER: lambda e: f"{_where(e)} registered fd {_fd(e)} with its epoll object",
    K.EPOLL_UNREGISTER: lambda e: f"{_where(e)} unregistered fd {_fd(e)} from its epoll object",
    K.EPOLL_MODIFY: lambda e: (
        f"{_where(e)} changed the events its epoll object watches on fd {_fd(e)}"
    ),
    K.EPOLL_WAIT: _wait,
    K.EPOLL_CLOSE: lambda e: f"{_where(e)} closed its epoll object (fd {_v(e.get('epfd'))})",
    K.BLOCKING_CALL: lambda e: (
        f"{_where(e)} calls {_v(e.get('call', 'a call'))}() on fd "
        f"{_fd(e)}, a blocking socket: it waits there"
    ),
    K.SETBLOCKING: lambda e: (
        f"{_where(e)} made fd {_fd(e)} {'blocking' if e.get('flag') else 'non-blocking'}"
    ),
    K.SETTIMEOUT: lambda e: f"{_where(e)} set a timeout of {_v(e.get('value'))} s on fd {_fd(e)}",
    K.THREAD: lambda e: (
        f"{_where(e)} started a thread" + (f" ({_v(e.get('name'))})" if e.get("name") else "")
    ),
    K.FORK: lambda e: f"{_where(e)} forked a child process",
    K.CRASH: lambda e: (
        f"{_where(e)} raised {_v(e.get('type', 'an exception'))}"
        + (f": {_v(e.get('message'))}" if e.get("message") else "")
        + " and the program stopped"
    ),
    K.EXIT: lambda e: f"the program exited (code {_v(e.get('code'))})",
    K.TRACER_ERROR: lambda e: f"the tracer could not be installed: {_v(e.get('error', ''))}",
}
# Events that point at a fault (a wait that never sleeps does too: see never_sleeps).
ALARMING = {K.CLOSE_REGISTERED, K.CRASH, K.THREAD, K.FORK, K.TRACER_ERROR}


def trace_note(event: TraceEvent) -> TraceNote:
    """One tracer event as a sentence; an unknown event is shown as it came."""
    kind = event.known
    rule = TRACE_NOTES.get(kind) if kind is not None else None
    if rule is None:
        if not event.kind and set(event.fields) == {"value"}:
            return TraceNote(_v(event.fields["value"]))
        shown = dict(event.fields, **({"at": event.at} if event.at else {}))
        fields = ", ".join(f"{k}={_v(v)}" for k, v in shown.items())
        name = _v(event.kind or "other")
        return TraceNote(f"{name}: {fields}" if fields else name)
    return TraceNote(
        rule(event),
        kind.value if kind is not None else "other",
        kind in ALARMING or event.never_sleeps,
    )


# --- one run of the student's program -------------------------------------------------------


# What a signal that ends the student's program says about which bound it hit.
SIGNAL_CAUSES = {
    signal.SIGXFSZ: "the file-size limit",
    signal.SIGXCPU: "the CPU-time limit",
    signal.SIGKILL: "most often a sandbox limit: memory or processes",
    signal.SIGSEGV: "a crash of the interpreter",
}


def describe_exit(code: int | None, ended_by: str = "") -> str:
    """How a run ended, as a phrase: by itself (its exit code), stopped by the grader once
    its check was over, killed by the kit (and why), or killed by a signal (and which bound
    that signal means). The harness gives -N for "killed by signal N"."""
    if ended_by == "grader":
        return "stopped by the grader after its check (it was still running, as a server should)"
    if ended_by:
        return f"killed by the kit ({ended_by})"
    if code is None:
        return "still running when the check ended"
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"killed by signal {-code}"
    cause = SIGNAL_CAUSES.get(signal.Signals(-code))
    return f"killed by signal {name}" + (f" ({cause})" if cause else "")


def program_run(proc: ProcessReport) -> ProgramRun:
    return ProgramRun(
        stdout=proc.stdout,
        stderr=proc.stderr,
        output_bytes=proc.output_bytes,
        exit=describe_exit(proc.exit_code, proc.ended_by),
        notes=tuple(trace_note(e) for e in proc.trace),
    )


# --- what a check measured and did ----------------------------------------------------------

# key → label, in the order shown; a key not listed is shown by its name after these.
MEASUREMENT_LABELS = {
    "cpu_fresh_percent": "CPU while idle, freshly started, no client",
    "cpu_silent_percent": "CPU while idle, silent clients connected",
    "cpu_after_percent": "CPU while idle, after the clients left",
    "start_seconds": "time until it listened",
}
UNITS = (("_percent", "%"), ("_seconds", "s"), ("_bytes", "bytes"))


def measurement(key: str, value) -> Measurement:
    clean = re.sub(r"[^a-z0-9_]", "", str(key).lower())
    unit = next((u for suffix, u in UNITS if clean.endswith(suffix)), "")
    label = MEASUREMENT_LABELS.get(clean, clean.replace("_", " ").strip() or str(key))
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return Measurement(
        key=str(key),
        label=label,
        value=value if numeric else str(value),
        unit=unit,
        cpu=clean.startswith("cpu") and unit == "%",
    )


def measurements(story: Story) -> tuple[Measurement, ...]:
    """CPU readings first, then the rest, each group in MEASUREMENT_LABELS' order."""
    rows = [measurement(k, v) for k, v in story.measurements.items()]
    order = list(MEASUREMENT_LABELS.values())
    rows.sort(key=lambda m: (not m.cpu, order.index(m.label) if m.label in order else len(order)))
    return tuple(rows)


def timeline(story: Story) -> tuple[TimelineEntry, ...]:
    return tuple(
        TimelineEntry(
            line.kind, line.text, line.t if line.t is None or math.isfinite(line.t) else None
        )
        for line in story.lines
    )


def explained(meta: CheckMetadata) -> dict:
    """The CheckResult fields that explain a verdict: timeline, figures, program runs."""
    return dict(
        story=timeline(meta.story),
        measurements=measurements(meta.story),
        processes=tuple(program_run(p) for p in meta.processes),
    )


# --- provenance -----------------------------------------------------------------------------


def kit_version() -> str:
    """The kit's version: grader.__version__, which the package's metadata is built from."""
    return __version__


def grading_date(now: datetime | None = None) -> str:
    """`now` (default: this moment) as ISO 8601 in UTC, to the second."""
    moment = now or datetime.now(UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def provenance(
    assignment: Assignment,
    submission: Submission,
    outcome: RunOutcome | None,
    graded_at: str | None = None,
) -> Provenance:
    """What this grading was: kit, date, sandbox and image, assignment and files hashed."""
    return Provenance(
        kit_version=kit_version(),
        graded_at=graded_at or grading_date(),
        sandbox=outcome.sandbox if outcome else "none",
        image_id=outcome.image_id if outcome else "",
        image_digest=outcome.image_digest if outcome else "",
        assignment_hash=assignment.digest,
        files=submission.hashes,
        files_hashed=submission.hashed,
    )


# --- verdicts -------------------------------------------------------------------------------


def _stage_failure(test: TestReport) -> tuple[Message, str, str]:
    """(reason, fault, details) of the first stage that did not pass."""
    for _, stage in test.stages:
        if stage.outcome == "passed":
            continue
        if stage.message.startswith(FAILED_PREFIX):
            # A verdict the check reached: fail(reason), the sentence as a Message beside
            # pytest's message (which holds its English).
            english = stage.message[len(FAILED_PREFIX) :].strip()
            return test.metadata.reason or verbatim(english), "submission", ""
        if stage.outcome == "skipped":
            return (
                msg("not run: {why}", why=stage.longrepr or stage.message),
                "grader",
                stage.longrepr,
            )
        return (
            msg(
                "the grader itself failed while running this check ({error}); "
                "this is not the submission's fault",
                error=stage.message or "no message",
            ),
            "grader",
            stage.longrepr,
        )
    return msg("the check did not pass"), "grader", ""


def check_result(
    spec: CheckSpec, test: TestReport | None, missing_reason: Message, missing_fault: str
) -> CheckResult:
    if test is None:
        return CheckResult(spec, False, missing_reason, fault=missing_fault)
    common = explained(test.metadata)
    if test.outcome == "passed":
        return CheckResult(spec, True, verbatim(""), **common)
    reason, fault, details = _stage_failure(test)
    return CheckResult(spec, False, reason, fault=fault, details=details, **common)


def score(
    assignment: Assignment,
    submission: Submission,
    outcome: RunOutcome | None,
    only: tuple[str, ...] = (),
    graded_at: str | None = None,
) -> SubmissionResult:
    """The verdicts, with the provenance of this grading (`graded_at` default: now)."""
    result = _score(assignment, submission, outcome, only)
    return replace(result, provenance=provenance(assignment, submission, outcome, graded_at))


def _score(
    assignment: Assignment,
    submission: Submission,
    outcome: RunOutcome | None,
    only: tuple[str, ...],
) -> SubmissionResult:
    specs = [s for s in assignment.checks if not only or s.id in only]
    if submission.problem:
        problem = submission.problem
        checks = tuple(
            CheckResult(
                s,
                False,
                as_message(problem)
                if s.id == "runs"
                else msg("not graded: {problem}", problem=problem),
                fault="submission",
            )
            for s in specs
        )
        return SubmissionResult(
            submission,
            assignment,
            checks,
            0.0,
            outcome.sandbox if outcome else "none",
            {},
            note=problem,
        )
    if outcome is None:
        # A hand-in without a problem always reaches a sandbox: nothing came back is the kit's.
        nothing = msg("the grader prepared nothing to run for this submission")
        checks = tuple(CheckResult(s, False, nothing, fault="grader") for s in specs)
        return SubmissionResult(submission, assignment, checks, 0.0, "none", {}, note=str(nothing))
    report = HarnessReport.from_json(outcome.report) if outcome.report else None
    missing = (
        as_message(outcome.error)
        if outcome.error
        else msg("the harness reported nothing for this check")
    )
    fault = outcome.error_fault or "infrastructure"
    checks = requires.apply(
        tuple(check_result(s, report.find(s.id) if report else None, missing, fault) for s in specs)
    )
    return SubmissionResult(
        submission,
        assignment,
        checks,
        outcome.seconds,
        outcome.sandbox,
        outcome.limits,
        note=outcome.error,
    )
