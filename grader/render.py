"""Render stage: SubmissionResults → a per-student report.html and the class index.html (Jinja2)."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import signal
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from grader.models import (GRADER_ERROR, GRADER_ERROR_NOTE, NOT_GRADABLE, Assignment,
                           CheckResult, SubmissionResult)

TEMPLATES = Path(__file__).resolve().parent / "templates"
TRACE_VALUE_MAX = 300       # characters of one tracer value shown (the student writes them)
HISTOGRAM_BINS = 10

# Everything below is escaped on output: a report shows text the student's program chose
# (its output, and the tracer's notes, which run inside the student's process).
ENV = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                  keep_trailing_newline=True)


def num(value, digits: int = 2) -> str:
    """A number as people write it: 10, 8.7, 0.05 (no float noise, no exponent)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def size(value) -> str:
    """A byte count for people: 18 bytes, 4.2 MB (4213748 bytes)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{_v(value)} bytes"
    if value < 10_000:
        return f"{value} byte{'' if value == 1 else 's'}"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{num(value / scale, 1)} {unit} ({value} bytes)"
    return f"{value} bytes"


ENV.filters["num"] = num
ENV.filters["size"] = size


# --- measurements -------------------------------------------------------------------------

# key → label; a key not listed is shown by its name. Units come from the key's suffix.
MEASUREMENT_LABELS = {
    "cpu_fresh_percent": "CPU while idle, freshly started, no client",
    "cpu_silent_percent": "CPU while idle, silent clients connected",
    "cpu_after_percent": "CPU while idle, after the clients left",
    "start_seconds": "time until it listened",
}
UNITS = (("_percent", "%"), ("_seconds", "s"), ("_bytes", "bytes"))


def measurement_rows(measurements: dict) -> list[dict]:
    """[{label, value, unit, cpu, bar}] in a fixed order: CPU readings first, then the rest."""
    rows = []
    for key, value in measurements.items():
        clean = re.sub(r"[^a-z0-9_]", "", str(key).lower())
        unit = next((u for suffix, u in UNITS if clean.endswith(suffix)), "")
        label = MEASUREMENT_LABELS.get(clean, clean.replace("_", " ").strip() or str(key))
        cpu = clean.startswith("cpu") and unit == "%"
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        bar = max(0.0, min(100.0, float(value))) if cpu and numeric and math.isfinite(value) else None
        rows.append({"label": label, "value": num(value, 1 if unit == "%" else 2), "unit": unit,
                     "cpu": cpu, "bar": num(bar, 1) if bar is not None else None})
    order = list(MEASUREMENT_LABELS.values())
    rows.sort(key=lambda r: (not r["cpu"], order.index(r["label"]) if r["label"] in order
                             else len(order)))
    return rows


# --- the tracer's notes -------------------------------------------------------------------

def _v(value) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= TRACE_VALUE_MAX else text[:TRACE_VALUE_MAX] + " …"


def _where(e: dict) -> str:
    return _v(e["at"]) if e.get("at") else "the program"


def _address(requested) -> str:
    if isinstance(requested, (list, tuple)) and len(requested) >= 2:
        host, port = requested[0], requested[1]
        return f"port {_v(port)} on {_v(host) if host else 'all interfaces'}"
    return _v(requested)


def _select(e: dict) -> str:
    selector = _v(e.get("selector") or "selector")
    timeout = e.get("timeout")
    if timeout is None:
        return f"{_where(e)} waits in {selector}.select() with no timeout (sleeps until an event)"
    if isinstance(timeout, (int, float)) and timeout <= 0.001:
        return (f"{_where(e)} calls {selector}.select(timeout={_v(timeout)}), which returns at "
                f"once: the loop never sleeps")
    return f"{_where(e)} waits in {selector}.select(timeout={_v(timeout)})"


def _fd(e: dict) -> str:
    return _v(e.get("fd", "?"))


# One rule per tracer event, as a table (what each event means in a sentence).
TRACE_NOTES = {
    "start": lambda e: f"started {_v(e.get('entry', 'the program'))}",
    "bind": lambda e: f"{_where(e)} bound fd {_fd(e)} to {_address(e.get('requested'))}",
    "listen": lambda e: (f"{_where(e)} listens on fd {_fd(e)}"
                         + (f" (backlog {_v(e['backlog'])})" if e.get("backlog") is not None
                            else "")),
    "register": lambda e: (f"{_where(e)} registered fd {_fd(e)} with "
                           f"{_v(e.get('selector') or 'the selector')}"),
    "unregister": lambda e: f"{_where(e)} unregistered fd {_fd(e)}",
    "close": lambda e: f"{_where(e)} closed fd {_fd(e)}",
    "close_registered": lambda e: (
        f"{_where(e)} closed fd {_fd(e)} while still registered"
        + (f" (registered at {_v(e['registered_at'])})" if e.get("registered_at") else "")),
    "select": _select,
    "setblocking": lambda e: (f"{_where(e)} made fd {_fd(e)} "
                              f"{'blocking' if e.get('flag') else 'non-blocking'}"),
    "settimeout": lambda e: f"{_where(e)} set a timeout of {_v(e.get('value'))} s on fd {_fd(e)}",
    "thread": lambda e: (f"{_where(e)} started a thread"
                         + (f" ({_v(e['name'])})" if e.get("name") else "")),
    "fork": lambda e: f"{_where(e)} forked a child process",
    "crash": lambda e: (f"{_where(e)} raised {_v(e.get('type', 'an exception'))}"
                        + (f": {_v(e['message'])}" if e.get("message") else "")
                        + " and the program stopped"),
    "exit": lambda e: f"the program exited (code {_v(e.get('code'))})",
    "tracer_error": lambda e: f"the tracer could not be installed: {_v(e.get('error', ''))}",
}
ALARMING = {"close_registered", "crash", "thread", "fork", "tracer_error"}


def trace_note(event) -> dict:
    """{text, kind, alarm} for one tracer event; unknown events are shown as they came."""
    if not isinstance(event, dict):
        return {"text": _v(event), "kind": "other", "alarm": False}
    kind = str(event.get("ev", "other"))
    rule = TRACE_NOTES.get(kind)
    if rule is None:
        fields = ", ".join(f"{k}={_v(v)}" for k, v in event.items() if k not in ("ev", "t"))
        return {"text": f"{_v(kind)}: {fields}" if fields else _v(kind), "kind": "other",
                "alarm": False}
    alarm = kind in ALARMING or (kind == "select" and isinstance(event.get("timeout"), (int, float))
                                 and event["timeout"] <= 0.001)
    return {"text": rule(event), "kind": kind, "alarm": alarm}


# --- one server run -----------------------------------------------------------------------

def describe_exit(code) -> str:
    if code is None:
        return "still running when the check ended"
    if not isinstance(code, int) or isinstance(code, bool):
        return f"ended with status {_v(code)}"
    if code == 0:
        return "exited normally (code 0)"
    if code > 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = "unknown signal"
    if -code == signal.SIGKILL:
        return (f"ended by signal {-code} ({name}); the grader stops every program still "
                f"running this way when a check is over")
    return f"ended by signal {-code} ({name})"


def process_view(proc) -> dict:
    """A server run with every field present, whatever the harness could record."""
    p = proc if isinstance(proc, dict) else {}
    trace = p.get("trace") or []
    notes = [trace_note(e) for e in trace] if isinstance(trace, (list, tuple)) else []
    stderr = str(p.get("stderr") or "")
    crash = next((e for e in reversed(trace) if isinstance(e, dict) and e.get("ev") == "crash"),
                 None) if isinstance(trace, (list, tuple)) else None
    return {
        "stdout": str(p.get("stdout") or ""),
        "stderr": stderr,
        "traceback": "Traceback (most recent call last)" in stderr,
        "output_bytes": p.get("output_bytes"),
        "exit": describe_exit(p.get("exit_code")),
        "crashed": crash is not None,
        "notes": notes,
    }


# --- one check ----------------------------------------------------------------------------

FAULTS = {
    "grader": "Not the student's fault: the grader itself failed on this check.",
    "infrastructure": "Not the student's fault: the grading machine or sandbox failed.",
}


def story_lines(story) -> list[dict]:
    lines = []
    for line in story or ():
        if isinstance(line, dict):
            t = line.get("t")
            timed = isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)
            lines.append({"t": f"+{t:.3f} s" if timed else "",
                          "kind": "saw" if line.get("kind") == "saw" else "did",
                          "text": str(line.get("text", "")),
                          "scenario": str(line.get("text", "")).startswith("— ")})
        else:
            lines.append({"t": "", "kind": "did", "text": str(line), "scenario": False})
    return lines


def check_view(check: CheckResult, problem: str = "", label: str = "Server run") -> dict:
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
        "show_hint": hint,
        "fault_note": FAULTS.get(check.fault, "") if check.grader_error else "",
        "story": story_lines(check.story),
        "measurements": measurement_rows(check.measurements or {}),
        "processes": [dict(process_view(p), n=i, of=len(check.processes), label=label)
                      for i, p in enumerate(check.processes or (), 1)],
        "details": check.details,
    }


def ordered_checks(result: SubmissionResult) -> list[CheckResult]:
    """Failed checks first (what needs attention), each group in the rubric's order."""
    return sorted(result.checks, key=lambda c: c.passed)


# --- pages --------------------------------------------------------------------------------

def report_context(result: SubmissionResult, self_check: bool = False) -> dict:
    checks = ordered_checks(result)
    hidden = [s for s in result.assignment.checks if not s.self_check]
    # The sandbox may also describe itself among the limits ("local (no isolation)"): one line.
    limits = {str(k): v for k, v in (result.limits or {}).items()}
    described = str(limits.pop("sandbox", "") or "")
    sandbox = result.sandbox if not described or described == result.sandbox else (
        described if described.startswith(result.sandbox) else f"{result.sandbox}: {described}")
    return {
        "result": result,
        "sub": result.submission,
        "assignment": result.assignment,
        "sandbox": sandbox,
        "limits": limits,
        "score": num(result.score),
        "max_score": num(result.max_score),
        "execution_time": num(result.execution_time, 1),
        "checks": [check_view(c, result.submission.problem,
                              "Client run" if result.assignment.kind == "client" else "Server run")
                   for c in checks],
        "failed": sum(c.status == "failed" for c in checks),
        "errors": sum(c.grader_error for c in checks),
        "status": result.status,
        "grader_error_note": GRADER_ERROR_NOTE,
        "self_check": self_check,
        "hidden_count": len(hidden),
        "show_details": not self_check,
    }


def render_report(result: SubmissionResult, *, self_check: bool = False) -> str:
    """One student's report. `self_check`: the student ran the visible checks themselves
    (a banner says so, and grader tracebacks meant for TAs are left out)."""
    return ENV.get_template("report.html").render(report_context(result, self_check))


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def histogram(results: list[SubmissionResult], bins: int = HISTOGRAM_BINS) -> list[dict]:
    """Counts of scores (as % of the maximum) in equal bins; 100% falls into the last one.
    A submission the grader failed on has no score yet: it is left out, never counted as 0."""
    counts = [0] * bins
    for r in results:
        if r.status == GRADER_ERROR:
            continue
        pct = _percent(r.score, r.max_score)
        counts[min(bins - 1, max(0, int(pct * bins // 100)))] += 1
    width = 100 // bins
    return [{"low": i * width, "high": 100 if i == bins - 1 else (i + 1) * width, "count": n}
            for i, n in enumerate(counts)]


def index_context(results: list[SubmissionResult], assignment: Assignment) -> dict:
    results = sorted(results, key=lambda r: r.submission.id)
    specs = list(assignment.checks)
    rows, problems = [], []
    for r in results:
        by_id = {c.spec.id: c for c in r.checks}
        errors = r.grader_errors
        rows.append({"result": r, "id": r.submission.id, "status": r.status,
                     "score": num(r.score), "max": num(r.max_score),
                     "percent": num(_percent(r.score, r.max_score), 1),
                     "error_reason": errors[0].reason if errors else "",
                     "cells": [by_id.get(s.id) for s in specs]})
        if r.submission.problem or r.note or errors:
            problems.append({"id": r.submission.id, "problem": r.submission.problem,
                             "note": r.note if r.note != r.submission.problem else "",
                             "not_theirs": [c.spec.id for c in errors]})
    rates = []
    for s in specs:
        # A check the grader failed on was not judged: it counts neither way.
        ran = [c for r in results for c in r.checks if c.spec.id == s.id and not c.grader_error]
        passed = sum(c.passed for c in ran)
        rates.append({"spec": s, "passed": passed, "ran": len(ran),
                      "percent": num(_percent(passed, len(ran)), 1)})
    scores = [_percent(r.score, r.max_score) for r in results if r.status != GRADER_ERROR]
    return {
        "assignment": assignment,
        "specs": specs,
        "rows": rows,
        "rates": rates,
        "histogram": histogram(results),
        "problems": problems,
        "count": len(results),
        "with_problem": sum(r.status == NOT_GRADABLE for r in results),
        "not_their_fault": sum(r.status == GRADER_ERROR for r in results),
        "full_marks": sum(r.max_score > 0 and r.score >= r.max_score for r in results),
        "mean": num(sum(scores) / len(scores), 1) if scores else "–",
        "median": num(_median(scores), 1) if scores else "–",
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _script(name: str) -> tuple[Markup, str]:
    """Our own inline script and its CSP hash: the page runs this script and no other."""
    code = ENV.get_template(name).render()
    digest = base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode("ascii")
    return Markup(code), f"'sha256-{digest}'"


def render_index(results: list[SubmissionResult], assignment: Assignment) -> str:
    """The class overview for TAs: sortable table, per-check pass rates, score histogram."""
    script, script_hash = _script("_sort.js.html")
    return ENV.get_template("index.html").render(index_context(results, assignment),
                                                 sort_script=script, script_hash=script_hash)


def _write(text: str, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def write_report(result: SubmissionResult, path: Path, **kw) -> Path:
    return _write(render_report(result, **kw), path)


def write_index(results: list[SubmissionResult], assignment: Assignment, path: Path) -> Path:
    return _write(render_index(results, assignment), path)
