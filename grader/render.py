"""Render stage: SubmissionResults → a per-student report.html and the class index.html (Jinja2).

It reads grader.models only: what the harness recorded reaches it already explained. Every
sentence goes through the kit's catalogue (grader.i18n) in the language a Speaker speaks."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import threading
import uuid
from pathlib import Path

from markupsafe import Markup

from grader.contract.message import Message, join, msg
from grader.i18n import Speaker
from grader.models import Assignment, CheckResult, ProgramRun, SubmissionResult
from grader.render_class import HISTOGRAM_BINS, histogram, index_context
from grader.render_env import environment, num, since, size
from grader.render_source import Cite, annotate, citations, students_line

BOTH = Speaker("both")
# An output excerpt shows this many bytes from its start and as many from its end: enough to
# read a traceback or a reply, never the megabytes a runaway loop prints.
EXCERPT_BYTES = 3 * 1024

__all__ = [
    "HISTOGRAM_BINS",
    "histogram",
    "index_context",
    "num",
    "render_index",
    "render_report",
    "since",
    "size",
    "write_index",
    "write_report",
]

# --- one check ----------------------------------------------------------------------------

FAULTS = {
    "grader": msg("Not the student's fault: the grader itself failed on this check."),
    "infrastructure": msg("Not the student's fault: the grading machine or sandbox failed."),
}
NOTE = msg(
    "This is a fault of the grader or the grading machine, not of the submitted code; "
    "it needs to be graded again."
)


def excerpt(text: str, limit: int = EXCERPT_BYTES) -> dict:
    """Head and tail of an output, `limit` bytes each, and how many bytes lie between."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= 2 * limit:
        return {"head": text, "tail": "", "omitted": 0, "bytes": len(data)}
    return {
        "head": data[:limit].decode("utf-8", errors="ignore"),
        "tail": data[-limit:].decode("utf-8", errors="ignore"),
        "omitted": len(data) - 2 * limit,
        "bytes": len(data),
    }


def run_view(run: ProgramRun) -> dict:
    return {"run": run, "stdout": excerpt(run.stdout), "stderr": excerpt(run.stderr)}


# How a scenario that passed begins its line in a reason of one line per scenario.
PASSED_MARK = "✓"


def check_view(
    check: CheckResult,
    problem: Message | str = "",
    label: Message | None = None,
    cite: Cite | None = None,
) -> dict:
    # A hint helps only where the student's code was judged: not when the grader failed, and
    # not on checks skipped because nothing could be run (the `runs` check says why).
    hint = check.hint_applies and (not problem or "runs" in check.spec.tags)
    return {
        "id": check.spec.id,
        "spec": check.spec,
        "passed": check.passed,
        "status": check.status,
        "grader_error": check.grader_error,
        "score": num(check.score),
        "points": num(check.spec.points),
        "reason": check.reason,
        "summary": what_failed(check.reason),
        "show_hint": hint,
        "fault_note": FAULTS.get(check.fault, "") if check.grader_error else "",
        "story": check.story,
        "measurements": check.measurements,
        "processes": [run_view(r) for r in check.processes],
        "run_label": label or msg("Server run"),
        "details": excerpt(check.details) if check.details else None,
        "cite": cite,
    }


def what_failed(reason: Message) -> Message:
    """The reason as the verdict at the top shows it: of a reason with one line per scenario
    (robustness), the failed lines only; the whole reason stays in the check's own section."""
    if not isinstance(reason, Message) or reason.msgid or reason.sep != "\n":
        return reason
    failed = [p for p in reason.parts if not str(p).startswith(PASSED_MARK)]
    return join(failed, "\n") if failed and len(failed) < len(reason.parts) else reason


def ordered_checks(result: SubmissionResult) -> list[CheckResult]:
    """Failed checks first (what needs attention), each group in the rubric's order."""
    return sorted(result.checks, key=lambda c: c.passed)


# --- pages --------------------------------------------------------------------------------


def _sandbox(result: SubmissionResult) -> tuple[str, dict]:
    # The sandbox may also describe itself among the limits ("local (no isolation)"): one line.
    limits = {str(k): v for k, v in (result.limits or {}).items()}
    described = str(limits.pop("sandbox", "") or "")
    if not described or described == result.sandbox:
        return result.sandbox, limits
    if described.startswith(result.sandbox):
        return described, limits
    return f"{result.sandbox}: {described}", limits


def report_context(
    result: SubmissionResult, self_check: bool = False, nav: dict | None = None
) -> dict:
    checks = ordered_checks(result)
    hidden = [s for s in result.assignment.checks if not s.self_check]
    sandbox, limits = _sandbox(result)
    cites = citations(result)
    source = annotate(result, cites)
    label = msg("Client run") if result.assignment.kind == "client" else msg("Server run")
    views = [
        check_view(
            c,
            result.submission.problem,
            label,
            students_line(c, cites) if c.status == "failed" else None,
        )
        for c in checks
    ]
    return {
        "result": result,
        "sub": result.submission,
        "assignment": result.assignment,
        "sandbox": sandbox,
        "limits": limits,
        "score": num(result.score),
        "max_score": num(result.max_score),
        "execution_time": num(result.execution_time, 1),
        "checks": views,
        "failed_checks": [v for v in views if not v["passed"]],
        "passed_checks": [v for v in views if v["passed"]],
        "failed": sum(c.status == "failed" for c in checks),
        "errors": sum(c.grader_error for c in checks),
        "status": result.status,
        "grader_error_note": NOTE,
        "self_check": self_check,
        "hidden_count": len(hidden),
        "show_details": not self_check,
        "source": source,
        "source_lines": source.cited if source else {},
        "nav": nav,
        "excerpt_kib": EXCERPT_BYTES // 1024,
    }


def render_report(
    result: SubmissionResult,
    *,
    self_check: bool = False,
    speaker: Speaker = BOTH,
    nav: dict | None = None,
) -> str:
    """One student's report. `self_check`: the student ran the visible checks themselves
    (a banner says so, and grader tracebacks meant for TAs are left out). `nav`: relative
    links to the class index and the previous and next student's report."""
    template = environment(speaker).get_template("report.html")
    return template.render(report_context(result, self_check, nav))


def _script(speaker: Speaker, name: str) -> tuple[Markup, str]:
    """Our own inline script and its CSP hash: the page runs this script and no other."""
    code = environment(speaker).get_template(name).render()
    digest = base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode("ascii")
    return Markup(code), f"'sha256-{digest}'"


def render_index(
    results: list[SubmissionResult], assignment: Assignment, *, speaker: Speaker = BOTH
) -> str:
    """The class overview for TAs: sortable table with each student's main reason, per-check
    pass rates and most common failure, score histogram."""
    script, script_hash = _script(speaker, "_sort.js.html")
    return (
        environment(speaker)
        .get_template("index.html")
        .render(index_context(results, assignment), sort_script=script, script_hash=script_hash)
    )


@contextlib.contextmanager
def compiling_templates(speaker: Speaker):
    """While the block runs (a self-check's run, which leaves a core waiting), the report
    templates are compiled in the background: the report after it is not held up by their
    compilation (about 0.1 s, the first time a process renders one)."""
    env = environment(speaker)  # here, once: not from two threads at a time
    threading.Thread(
        target=_compile_all, args=(env,), name="socketgrade-templates", daemon=True
    ).start()
    yield


def _compile_all(env) -> None:
    for name in env.list_templates():
        try:
            env.get_template(name)
        except Exception:  # one that cannot compile says so when it renders
            continue


def _write(text: str, path: Path) -> Path:
    """Through a temporary file beside it: a grading stopped half-way never leaves half a
    page (not mkstemp's, which only its owner may read: a web server may serve the reports)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_report(
    result: SubmissionResult,
    path: Path,
    *,
    self_check: bool = False,
    speaker: Speaker = BOTH,
    nav: dict | None = None,
) -> Path:
    return _write(render_report(result, self_check=self_check, speaker=speaker, nav=nav), path)


def write_index(
    results: list[SubmissionResult], assignment: Assignment, path: Path, *, speaker: Speaker = BOTH
) -> Path:
    return _write(render_index(results, assignment, speaker=speaker), path)
