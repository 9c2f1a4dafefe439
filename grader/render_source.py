"""The handed-in entry file as a report shows it: the lines its sentences cite, with notes."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from grader.contract.message import Message
from grader.models import CheckResult, SubmissionResult

# A source is shown whole up to this many lines; a longer one only around its cited lines.
WHOLE_FILE_LINES = 120
CONTEXT_LINES = 3
HEAD_LINES = 40  # a long file that no sentence cites: its start
MAX_SOURCE_BYTES = 512 * 1024  # larger hand-ins are not shown at all (a report stays small)
NOTES_PER_LINE = 4


@dataclass
class Cite:
    """A sentence that names `<entry>:<n>`, and which check it belongs to."""

    line: int
    text: Message | str
    check: str
    alarm: bool = False


@dataclass
class SourceLine:
    number: int
    code: str
    notes: list[Cite] = field(default_factory=list)
    more: int = 0


@dataclass
class Source:
    """Lines to show; an int in `rows` stands for that many skipped lines."""

    entry: str
    total: int
    rows: list[SourceLine | int]
    cited: dict[int, str]  # line number → its code, for the verdict's "the student's line"


def cite_pattern(entry: str) -> re.Pattern[str]:
    """`server.py:14`, also with a folder before it, never inside a longer name."""
    name = re.escape(Path(entry).name)
    # server.py:14, and Python's own forms: File "server.py", line 14 / (server.py, line 14)
    return re.compile(rf"(?<![\w.-])(?:[\w./-]*/)?{name}(?::(\d+)\b|\"?, line (\d+))")


def _sentences(check: CheckResult) -> Iterator[tuple[Message | str, bool]]:
    """Every sentence of a failed check that may cite a line, the reason first; of a passed
    check only the tracer's alarms (its timeline would bury the lines that need fixing)."""
    if not check.passed:
        yield check.reason, True
    for run in check.processes:
        for note in run.notes:
            if note.alarm or not check.passed:
                yield note.text, note.alarm
    if not check.passed:
        for line in check.story:
            yield line.text, False


def citations(result: SubmissionResult) -> list[Cite]:
    entry = result.submission.entry
    if not entry:
        return []
    pattern = cite_pattern(entry)
    out: list[Cite] = []
    for check in result.checks:
        for text, alarm in _sentences(check):
            for m in pattern.finditer(str(text)):
                out.append(Cite(int(m.group(1) or m.group(2)), text, check.spec.id, alarm))
    return out


def students_line(check: CheckResult, cites: Iterable[Cite]) -> Cite | None:
    """The line a failed check points at: its reason's, else an alarming note's, else any."""
    mine = [c for c in cites if c.check == check.spec.id]
    if not mine:
        return None
    reason = [c for c in mine if c.text is check.reason]
    alarms = [c for c in mine if c.alarm]
    return (reason or alarms or mine)[0]


def _candidates(result: SubmissionResult) -> Iterator[Path]:
    sub = result.submission
    if sub.folder is not None and sub.entry:
        yield Path(sub.folder) / sub.entry
    # After grading the prepared copy is gone; the hand-in itself may still be there (a
    # report re-rendered from saved results). Its hash, where recorded, must match.
    if sub.entry and sub.source.is_dir():
        yield sub.source / sub.entry
    elif sub.source.suffix == ".py":
        yield sub.source


def _recorded_hash(result: SubmissionResult) -> str:
    hashes = result.provenance.files if result.provenance else result.submission.hashes
    return next((f.sha256 for f in hashes if f.path == result.submission.entry), "")


def read_entry(result: SubmissionResult) -> str | None:
    """The entry file's text as handed in, or None when it is not at hand (nothing prepared,
    or a report re-rendered after the hand-in was moved) or no longer what was graded."""
    if not result.submission.entry:
        return None
    recorded = _recorded_hash(result)
    for path in _candidates(result):
        try:
            if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_SOURCE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if recorded and hashlib.sha256(data).hexdigest() != recorded:
            continue
        return data.decode("utf-8", errors="replace")
    return None


def annotate(result: SubmissionResult, cites: list[Cite], text: str | None = None) -> Source | None:
    """The entry file with each cited line's notes; around the cited lines when it is long."""
    text = read_entry(result) if text is None else text
    if text is None or not result.submission.entry:
        return None
    lines = text.expandtabs(4).splitlines() or [""]
    total = len(lines)
    by_line: dict[int, list[Cite]] = {}
    for c in cites:
        if 1 <= c.line <= total:
            notes = by_line.setdefault(c.line, [])
            if not any(str(n.text) == str(c.text) for n in notes):
                notes.append(c)
    if total <= WHOLE_FILE_LINES:
        shown = set(range(1, total + 1))
    elif by_line:
        shown = {
            n
            for line in by_line
            for n in range(line - CONTEXT_LINES, line + CONTEXT_LINES + 1)
            if 1 <= n <= total
        }
    else:
        shown = set(range(1, min(total, HEAD_LINES) + 1))
    rows: list[SourceLine | int] = []
    last = 0
    for n in sorted(shown):
        if n > last + 1:
            rows.append(n - last - 1)
        notes = by_line.get(n, [])
        rows.append(
            SourceLine(n, lines[n - 1], notes[:NOTES_PER_LINE], max(0, len(notes) - NOTES_PER_LINE))
        )
        last = n
    if last < total:
        rows.append(total - last)
    return Source(result.submission.entry, total, rows, {n: lines[n - 1] for n in by_line})
