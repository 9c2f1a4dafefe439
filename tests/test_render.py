"""The render stage: report.html and index.html from SubmissionResults."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import Markup

from grader import export, render
from grader import score as score_stage
from grader.assignment import load_assignment
from grader.contract import CheckMetadata, TraceEvent
from grader.i18n import Speaker
from grader.models import CheckResult, RunOutcome, Submission, SubmissionResult
from grader.score import score

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parent.parent
LIMITS = {"sandbox": "local (no isolation)", "wall clock": "240 s", "memory": "512 MiB"}
EN = Speaker("en")
HOSTILE = '<script>alert(1)</script> {{ 7*7 }} {% raw %} " onmouseover="alert(2)'


class Page(HTMLParser):
    """What a browser would see as elements: tags, attributes and the text inside them."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)

    def all_text(self) -> str:
        return "".join(self.text)


@pytest.fixture(scope="module")
def assignment():
    return load_assignment("epoll")


def submission(ident: str, **kw) -> Submission:
    folder = Path("/nonexistent") / ident
    return Submission(ident, folder, folder, "server.py", files=("server.py",), **kw)


@pytest.fixture(scope="module")
def listing(assignment) -> SubmissionResult:
    """The course's own listing: 9 checks pass, robustness fails (it dies on a reset)."""
    report = json.loads((DATA / "course_listing_report.json").read_text(encoding="utf-8"))
    return score(
        assignment, submission("course_listing"), RunOutcome(report, 8.7, "local", dict(LIMITS))
    )


def explained(meta: dict) -> dict:
    """What the score stage makes of a check's metadata as the harness wrote it."""
    return score_stage.explained(CheckMetadata.from_json(meta))


def with_check(result: SubmissionResult, check_id: str, **changes) -> SubmissionResult:
    checks = []
    for c in result.checks:
        if c.spec.id == check_id:
            fields = dict(
                spec=c.spec,
                passed=c.passed,
                reason=c.reason,
                story=c.story,
                measurements=c.measurements,
                processes=c.processes,
                fault=c.fault,
                details=c.details,
            )
            fields.update(changes)
            c = CheckResult(**fields)
        checks.append(c)
    return SubmissionResult(
        result.submission,
        result.assignment,
        tuple(checks),
        result.execution_time,
        result.sandbox,
        result.limits,
        result.note,
    )


@pytest.fixture(scope="module")
def hostile(assignment, listing) -> SubmissionResult:
    """Everything the student's program controls is made of markup and template syntax."""
    process = {
        "stdout": f"hello {HOSTILE}\n",
        "stderr": f"Traceback (most recent call last):\n"
        f'  File "server.py", line 3, in <module>\nValueError: {HOSTILE}\n',
        "output_bytes": 123,
        "exit_code": 1,
        "trace": [
            {"ev": "crash", "type": "ValueError", "message": HOSTILE, "at": "<b>server.py</b>:3"},
            {"ev": "thread", "name": HOSTILE, "at": "server.py:9"},
            {"ev": "mystery", "payload": HOSTILE},
        ],
    }
    seen = explained(
        {
            "story": {"lines": [{"t": 0.5, "kind": "saw", "text": f"client A got {HOSTILE}"}]},
            "processes": [process],
        }
    )
    result = with_check(
        listing,
        "echo",
        passed=False,
        reason=f"the reply was {HOSTILE!r}",
        story=seen["story"],
        processes=seen["processes"],
    )
    sub = Submission(
        "mallory",
        Path("/nonexistent"),
        Path("/nonexistent"),
        "server.py",
        files=("server.py", f"{HOSTILE}.py"),
    )
    return SubmissionResult(
        sub, assignment, result.checks, 1.0, "local", dict(LIMITS), note=f"note {HOSTILE}"
    )


# --- escaping ------------------------------------------------------------------------------


def assert_inert(html: str, own_scripts: int) -> None:
    page = Page(html)
    scripts = [t for t, _ in page.tags if t == "script"]
    assert len(scripts) == own_scripts
    assert not [(t, a) for t, a in page.tags for name in a if name.startswith("on")]
    assert not [t for t, _ in page.tags if t == "b"]
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Template syntax in the student's output is shown as it was written, never evaluated.
    assert "{{ 7*7 }}" in html and "{% raw %}" in html
    assert "alert(1)</script> 49" not in page.all_text()


def test_report_escapes_everything_the_student_wrote(hostile):
    html = render.render_report(hostile)
    assert_inert(html, own_scripts=0)
    text = Page(html).all_text()
    assert f"hello {HOSTILE}" in text  # stdout, verbatim once unescaped
    assert f"ValueError: {HOSTILE}" in text  # the traceback
    assert f"client A got {HOSTILE}" in text  # a story line quoting the reply
    assert f"{HOSTILE}.py" in text  # a file name from the hand-in
    assert "<b>server.py</b>:3 raised ValueError" in text  # tracer notes are text too


def test_index_escapes_reasons_in_tooltips(assignment, hostile, listing):
    html = render.render_index([hostile, listing], assignment)
    assert_inert(html, own_scripts=1)
    titles = [a.get("title", "") for t, a in Page(html).tags if t == "td"]
    assert f"the reply was {HOSTILE!r}" in titles


def test_index_runs_only_its_own_script(assignment, listing):
    html = render.render_index([listing], assignment)
    page = Page(html)
    (script,) = page.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = next(
        a["content"]
        for t, a in page.tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    )
    assert f"script-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp


def test_pages_need_no_network(assignment, listing):
    for html in (render.render_report(listing), render.render_index([listing], assignment)):
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
        assert "@import" not in html and "url(" not in html


# --- the report ----------------------------------------------------------------------------


def test_report_names_the_sandbox_limits_and_time(listing):
    text = Page(render.render_report(listing)).all_text()
    assert "local (no isolation)" in text
    assert "Wall clock" in text and "240 s" in text
    assert "Memory" in text and "512 MiB" in text
    assert "8.7 s" in text
    assert "90 / 100" in text


def test_report_explains_the_failed_check(listing):
    html = render.render_report(listing)
    text = Page(html).all_text()
    robustness = next(c for c in listing.checks if c.spec.id == "robustness")
    assert robustness.reason
    for line in str(robustness.reason).split("\n"):
        assert line in text
    # The timeline of what the grader did and saw, with times.
    assert "client S sent 8.5 MB without reading any reply" in text
    assert "+0.946 s" in text
    # The crash: traceback as captured, and the tracer's note on where it happened.
    assert re.search(
        r'<pre class="traceback">Traceback \(most recent call last\):\n'
        r".*UnicodeDecodeError",
        html,
        re.S,
    )
    assert (
        "server.py:15 raised UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff "
        "in position 0: invalid start byte and the program stopped"
    ) in text
    # Explanation and hint, in both languages.
    assert "Catch ConnectionResetError around recv/send" in text
    assert "recv/send 外捕获 ConnectionResetError" in text
    assert "健壮性(超出教程的要求)" in text


def test_failed_checks_come_first_and_passed_ones_have_no_hint(listing):
    html = render.render_report(listing)
    assert html.index('id="check-robustness"') < html.index('id="check-runs"')
    runs_section = html[html.index('id="check-runs"') :]
    runs_section = runs_section[: runs_section.index("</section>")]
    assert "Hint" not in runs_section and "passed" in runs_section


def test_report_shows_cpu_measurements(listing):
    text = Page(render.render_report(listing)).all_text()
    assert "CPU while idle, freshly started, no client" in text
    assert "CPU while idle, silent clients connected" in text
    seen = explained(
        {
            "story": {
                "measurements": {
                    "start_seconds": 0.05,
                    "cpu_fresh_percent": 97.5,
                    "cpu_silent_percent": 99.0,
                    "cpu_after_percent": 98.0,
                }
            },
            "processes": [
                {
                    "stdout": "",
                    "stderr": "",
                    "output_bytes": 0,
                    "exit_code": -9,
                    "trace": [
                        {
                            "ev": "select",
                            "timeout": 0,
                            "at": "server.py:30",
                            "selector": "EpollSelector",
                        }
                    ],
                }
            ],
        }
    )
    busy = with_check(
        listing,
        "idle_cpu",
        passed=False,
        reason="the server used 98% CPU while idle (fresh, no client; limit 10%)",
        **seen,
    )
    html = render.render_report(busy)
    text = Page(html).all_text()
    assert "97.5%" in text and "99%" in text and "98%" in text
    assert 'style="width: 97.5%"' in html
    assert (
        "server.py:30 calls EpollSelector.select(timeout=0), which returns at once: "
        "the loop never sleeps"
    ) in text
    assert "killed by signal SIGKILL" in text


def note(event):
    made = score_stage.trace_note(TraceEvent.from_json(event))
    return replace(made, text=str(made.text))  # the English sentence


def test_tracer_notes_read_as_sentences():
    closed = note(
        {"ev": "close_registered", "fd": 5, "at": "server.py:16", "registered_at": "server.py:22"}
    )
    assert closed.text == (
        "server.py:16 closed fd 5 while still registered (registered at server.py:22)"
    )
    assert closed.alarm
    assert (
        note({"ev": "bind", "requested": ["", 8888], "at": "server.py:8", "fd": 5}).text
        == "server.py:8 bound fd 5 to port 8888 on all interfaces"
    )
    assert note({"ev": "thread", "at": "server.py:40"}).text == "server.py:40 started a thread"
    assert (
        note({"ev": "select", "timeout": None, "at": "s.py:1", "selector": "EpollSelector"}).alarm
        is False
    )
    assert "mystery" in note({"ev": "mystery", "x": 1}).text
    assert note("not an event").text == "not an event"


def test_waits_that_never_sleep_are_flagged_whatever_the_mechanism():
    busy = note({"ev": "select_call", "timeout": 0, "at": "server.py:9"})
    assert busy.alarm and busy.text == (
        "server.py:9 calls select.select(timeout=0), which returns at once: the loop never sleeps"
    )
    assert note({"ev": "select", "timeout": 0, "selector": "SelectSelector"}).alarm
    assert note({"ev": "poll_wait", "timeout": 0, "at": "server.py:9"}).alarm
    assert note({"ev": "epoll_wait", "timeout": 0.0, "at": "server.py:9"}).alarm
    # poll() counts in milliseconds; a negative timeout means none: both sleep.
    assert not note({"ev": "poll_wait", "timeout": 1000, "at": "server.py:9"}).alarm
    assert not note({"ev": "poll_wait", "timeout": -1, "at": "server.py:9"}).alarm
    assert not note({"ev": "epoll_wait", "timeout": -1, "at": "server.py:9"}).alarm
    assert "with no timeout" in note({"ev": "epoll_wait", "timeout": -1}).text


def test_fault_that_is_not_the_students_is_flagged(listing):
    broken = with_check(
        listing,
        "cleanup",
        passed=False,
        fault="grader",
        reason="the grader itself failed while running this check (boom); "
        "this is not the submission's fault",
        details="Traceback (most recent call last):\n  grader internals\n",
    )
    html = render.render_report(broken)
    section = html[html.index('id="check-cleanup"') :]
    assert "Hint" not in section[: section.index("</section>")]
    ta = Page(html).all_text()
    assert "not the student's fault" in ta
    assert "the grader itself failed on this check" in ta
    assert "grader internals" in ta
    student = Page(render.render_report(broken, self_check=True)).all_text()
    assert "not the student's fault" in student
    assert "grader internals" not in student


def test_self_check_banner(assignment, listing):
    visible = [c for c in listing.checks if c.spec.self_check]
    mine = SubmissionResult(
        listing.submission, assignment, tuple(visible), 5.0, "local", dict(LIMITS)
    )
    text = Page(render.render_report(mine, self_check=True)).all_text()
    assert "Self-check." in text and "1 more check run after hand-in" in text
    assert "Self-check." not in Page(render.render_report(mine)).all_text()


def test_report_of_a_submission_that_could_not_be_run(assignment):
    sub = Submission(
        "nobody",
        Path("/nonexistent"),
        None,
        None,
        problem="no server.py and no single .py file: found a.py, b.py",
        files=("a.py", "b.py"),
    )
    result = score(assignment, sub, None)
    html = render.render_report(result, speaker=EN)
    text = Page(html).all_text()
    # Only the `runs` check, which carries the reason, offers a hint: the others never ran.
    assert html.count("<h4>Hint</h4>") == 1
    assert "Run `python server.py` yourself" in text
    assert "The submission could not be run: no server.py and no single .py file" in text
    assert "expected entry file server.py (not found)" in text
    assert "0 / 100" in text


def test_report_survives_missing_and_odd_fields(assignment):
    spec = assignment.checks[0]
    odd = CheckResult(
        spec,
        False,
        "",
        **explained(
            {
                "story": {
                    "lines": [{"text": "no time, no kind"}, "a bare string"],
                    "measurements": {"weird_thing": "n/a", "cpu_x_percent": float("nan")},
                },
                "processes": [{}, {"exit_code": None, "trace": [17, {"ev": "exit"}]}],
            }
        ),
    )
    empty = CheckResult(assignment.checks[1], True, "")
    sub = Submission("odd", Path("/nonexistent"), None, None)
    result = SubmissionResult(sub, assignment, (odd, empty), 0.0, "local")
    text = Page(render.render_report(result)).all_text()
    assert "no reason was recorded" in text
    assert "no time, no kind" in text and "a bare string" in text
    assert "weird thing" in text and "n/a" in text
    assert "still running when the check ended" in text
    assert "the program exited (code None)" in text
    assert Page(render.render_index([result], assignment)).all_text()


# --- the index -----------------------------------------------------------------------------


def test_index_has_a_row_per_student_links_and_pass_rates(assignment, listing):
    perfect = with_check(listing, "robustness", passed=True, reason="")
    perfect = SubmissionResult(submission("alice"), assignment, perfect.checks, 3.0, "local")
    nobody = score(
        assignment, Submission("zed", Path("/x"), None, None, problem="the zip file is empty"), None
    )
    html = render.render_index([nobody, listing, perfect], assignment, speaker=EN)
    page = Page(html)
    body = html[html.index("<tbody>") : html.index("</tbody>")]
    assert body.count("<tr>") == 3
    links = [a["href"] for t, a in page.tags if t == "a"]
    for ident in ("alice", "course_listing", "zed"):
        assert f"{ident}/report.html" in links
    # Rows in a stable order (by id), whatever order the results came in.
    assert body.index("alice/") < body.index("course_listing/") < body.index("zed/")
    text = page.all_text()
    assert "2 / 3" in text  # runs passed by alice and the listing
    assert "1 / 3" in text  # robustness passed by alice only
    assert "100 / 100" in text and "90 / 100" in text and "0 / 100" in text
    assert "the zip file is empty" in text  # the submissions with problems
    histogram = [t for t in page.text if re.fullmatch(r"\d+–\d+%: \d+ submissions?", t)]
    assert "90–100%: 2 submissions" in histogram and "0–10%: 1 submission" in histogram
    marks = [a for t, a in page.tags if t == "td" and "mark" in a.get("class", "")]
    assert len(marks) == 3 * len(assignment.checks)


def test_index_of_no_submissions(assignment):
    html = render.render_index([], assignment, speaker=EN)
    assert "<strong>0</strong> submissions" in html
    assert html[html.index("<tbody>") : html.index("</tbody>")].count("<tr>") == 0


# --- determinism and files -----------------------------------------------------------------


def test_rendering_is_deterministic(assignment, listing, hostile):
    assert render.render_report(listing) == render.render_report(listing)
    assert render.render_index([listing, hostile], assignment) == render.render_index(
        [hostile, listing], assignment
    )


def test_rendering_is_identical_across_interpreters():
    code = (
        "import json, sys; from pathlib import Path\n"
        "from grader import render; from grader.assignment import load_assignment\n"
        "from grader.models import RunOutcome, Submission; from grader.score import score\n"
        "a = load_assignment('epoll')\n"
        "s = Submission('x', Path('/n'), Path('/n'), 'server.py')\n"
        "o = RunOutcome(json.load(open(sys.argv[1])), 8.7, 'local', {'m': '1'})\n"
        # The same grading date: the date is provenance, not a difference between runs.
        "r = score(a, s, o, graded_at='2026-01-01T00:00:00+00:00')\n"
        "sys.stdout.write(render.render_report(r) + render.render_index([r], a))\n"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outputs.add(
            subprocess.run(
                [sys.executable, "-c", code, str(DATA / "course_listing_report.json")],
                cwd=ROOT,
                env=env,
                capture_output=True,
                check=True,
            ).stdout
        )
    assert len(outputs) == 1


def test_write_report_and_index(tmp_path, assignment, listing):
    report = render.write_report(
        listing, tmp_path / "out" / "course_listing" / "report.html", self_check=True
    )
    index = render.write_index([listing], assignment, tmp_path / "out" / "index.html")
    assert report.read_bytes() == render.render_report(listing, self_check=True).encode()
    assert index.read_bytes() == render.render_index([listing], assignment).encode()


def test_the_overview_and_grades_need_only_each_result_in_brief(
    tmp_path, assignment, listing, hostile
):
    """A batch keeps each student's result in brief once its own files are written (memory
    flat in class size): the overview and grades.csv come out the same from the briefs."""
    whole = [hostile, listing]
    brief = [r.in_brief() for r in whole]
    assert all(not c.story and not c.processes for r in brief for c in r.checks)
    assert render.render_index(brief, assignment) == render.render_index(whole, assignment)
    export.write_grades_csv(whole, tmp_path / "whole.csv")
    export.write_grades_csv(brief, tmp_path / "brief.csv")
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "brief.csv").read_bytes()


class _Html:
    """A value with __html__ only (no __html_format__)."""

    def __html__(self):
        return "<b>as html</b>"


@pytest.mark.parametrize(
    "template, args, kwargs",
    [
        ("{a} & {b}", (), {"a": "<x>", "b": Markup("<i>kept</i>")}),
        ("{n:.0f}% of {s:>6}", (), {"n": 41.6, "s": "<&>"}),
        ('<span lang="{}"{}>{}</span>', ("en", Markup(' class="alt"'), "<t>"), {}),
        ("<{0} x={1}>{2}</{0}>", ("p", 3, "a\"b'c"), {}),
        ("{{literal}} {v}", (), {"v": None}),
        ("{h} and {n}", (), {"h": _Html(), "n": 7}),
        ("{v!r}", (), {"v": "<r>"}),
        ("{v.real}", (), {"v": 3}),
        ("{m:>4}", (), {"m": Markup("<m>")}),
        ("{h:>4}", (), {"h": _Html()}),
        ("{missing}", (), {}),
        ("{0} {}", ("a", "b"), {}),
        ("{} {}", ("only one",), {}),
        ("{w:{width}}", (), {"w": "x", "width": 3}),
        ("single } brace", (), {}),
        ("{a} }", (), {}),  # the missing field is met before the stray brace
        ("{0} {", (), {}),
    ],
)
def test_html_format_is_markup_format(template, args, kwargs):
    """The reports' fast formatting gives Markup.format's text, and its errors."""
    from grader.render_env import html_format

    try:
        expected = Markup(template).format(*args, **kwargs)
    except Exception as exc:  # the same kind of error, which the renderer catches
        with pytest.raises(type(exc)):
            html_format(template, *args, **kwargs)
    else:
        got = html_format(template, *args, **kwargs)
        assert isinstance(got, Markup)
        assert str(got) == str(expected)


def test_the_report_templates_compile_in_the_background_while_a_self_check_runs():
    """grade check renders one report once its run is over: the templates are compiled while
    the run goes on (render.compiling_templates), not after it."""
    import threading

    from grader import i18n, render
    from grader.render_env import environment

    sp = i18n.speaker("en")
    env = environment(sp)
    env.cache.clear()
    names = env.list_templates()
    with render.compiling_templates(sp):
        worker = next(t for t in threading.enumerate() if t.name == "socketgrade-templates")
        worker.join(timeout=60)
    assert not worker.is_alive()
    compiled = {key[1] for key in env.cache.keys()}
    assert compiled == set(names), set(names) - compiled
