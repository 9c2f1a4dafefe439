"""How a check ends (fail, naming the student's line) and how the student's program ended."""

from __future__ import annotations

import re
import signal
from typing import NoReturn

import pytest

from grader.contract import Message, TraceKind, as_message, msg
from grader.harness.launch import StudentProcess, latest_running

# Exit statuses worth a word of their own: what the signal most often means here.
SIGNAL_NOTES: dict[int, Message] = {
    signal.SIGXFSZ: msg("it wrote more than the file-size limit"),
    signal.SIGKILL: msg("most often the memory limit"),
}


# A line of the student's as reasons cite it: 'server.py:14'.
CITED = re.compile(r"\b[\w.-]+\.py:\d+")
# Reasons of checks that did not judge the code: no line to point to.
UNJUDGED = ("not judged", "not applicable")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def fail(reason: Message) -> NoReturn:
    """End the check with its verdict: `reason` is the sentence the student reads (its English
    is pytest's failure message; the plugin puts the Message itself in the report). A reason
    that names no line of the student's gets the line the program stands at (with_line)."""
    __tracebackhide__ = True
    reason = with_line(as_message(reason))
    failed = pytest.fail.Exception(str(reason), pytrace=False)
    failed.sg_reason = as_message(reason)  # type: ignore[attr-defined]
    raise failed


def with_line(reason: Message) -> Message:
    """`reason`, and where it names no line of the student's, the line the student's program
    (its newest run still alive) stands at now, asked of its interpreter: the check judged
    from what it saw; this only points the student to the code. A check that did not judge
    ("not judged", "not applicable") says nothing more."""
    if not reason.msgid and len(reason.parts) == 1 and isinstance(reason.parts[0], Message):
        reason = reason.parts[0]
    if reason.msgid.startswith(UNJUDGED) or CITED.search(str(reason)):
        return reason
    proc = latest_running()
    site = proc.stack_site() if proc is not None else None
    if proc is None or not site:
        return reason
    return msg(
        "{reason}; when this check failed, the program was at {site}",
        reason=reason,
        site=proc.quote(site),
    )


def describe_death(proc: StudentProcess) -> Message:
    """One sentence on how the student's program ended, from its exit status and stderr."""
    code = proc.returncode()
    crash = next((e for e in reversed(proc.trace()) if e["ev"] == TraceKind.CRASH.value), None)
    stderr = proc.stderr.text().strip() if proc.stderr else ""
    last = stderr.splitlines()[-1] if stderr else ""
    how: Message
    if proc.killed_for.startswith("memory"):
        # The kit's own watchdog killed it: say so, with the figures, rather than guess.
        how = msg(
            "was killed by the kit for using too much memory ({figures})",
            figures=proc.killed_for[8:],
        )
    elif code is not None and code < 0:
        note = SIGNAL_NOTES.get(-code)
        how = (
            msg("was killed by {signal} ({note})", signal=_signal_name(-code), note=note)
            if note
            else msg("was killed by {signal}", signal=_signal_name(-code))
        )
    else:
        how = msg("exited with code {code}", code=str(code))
    if crash:
        error = str(crash.get("type") or "") or msg("an exception")
        text = str(crash.get("message", ""))
        if isinstance(crash.get("at"), str):
            return msg(
                "the program {how}: {error}: {message} at {site}",
                how=how,
                error=error,
                message=text,
                site=crash["at"],
            )
        return msg("the program {how}: {error}: {message}", how=how, error=error, message=text)
    ended = next((e for e in reversed(proc.trace()) if e["ev"] == TraceKind.EXIT.value), None)
    if ended and isinstance(ended.get("at"), str) and (code or 0) >= 0:
        site = proc.quote(ended["at"])
        if last:
            return msg(
                "the program {how} at {site}: {output}", how=how, site=site, output=last[:300]
            )
        return msg("the program {how} at {site}", how=how, site=site)
    start = next((e for e in proc.trace() if e["ev"] == TraceKind.START.value), None)
    if ended and ended.get("end") is True and start and isinstance(start.get("entry"), str):
        end = proc.last_site(start["entry"])
        if end:
            return msg(
                "the program {how} after running to the end of its code (its last line: {site})",
                how=how,
                site=proc.quote(end),
            )
    if last:
        return msg("the program {how}: {output}", how=how, output=last[:300])
    return msg("the program {how}", how=how)
