"""The report and the class view in the course's languages: verdict first, the source
annotated, bounded excerpts, the class table's reasons and links."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grader import render
from grader.assignment import load_assignment
from grader.contract import join, msg, verbatim
from grader.i18n import Speaker
from grader.models import (
    CheckResult,
    FileHash,
    ProgramRun,
    RunOutcome,
    Submission,
    SubmissionResult,
    Text,
)
from grader.render_env import Words
from grader.render_source import WHOLE_FILE_LINES
from grader.score import score

DATA = Path(__file__).parent / "data"
LIMITS = {"sandbox": "local (no isolation)", "wall clock": "240 s"}
HOSTILE = "<script>alert(1)</script> {{ 7*7 }} {% raw %}"
ZH, EN, BOTH = Speaker("zh"), Speaker("en"), Speaker("both")
NAV = {"index": "../index.html", "prev": "../alice/report.html", "next": None}

SOURCE = """import selectors, socket
sel = selectors.EpollSelector()
srv = socket.socket()
srv.bind(("", 8888))
srv.listen()
def echo(conn):
    data = conn.recv(1024)  # <script>alert(1)</script> {{ 7*7 }}
    if not data:
        conn.close()
        sel.unregister(conn)
"""


class Visible(HTMLParser):
    """The text a reader sees outside code, identifiers and the student's own output: where
    a `--lang zh` page must have no English."""

    SHIELD = frozenset({"code", "pre", "kbd", "samp", "script", "style", "title"})
    VOID = frozenset({"br", "meta", "input", "img", "hr", "link", "rect", "line", "wbr"})

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        shielded = tag in self.SHIELD or dict(attrs).get("translate") == "no"
        self.stack.append((tag, shielded or bool(self.stack and self.stack[-1][1])))

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if not (self.stack and self.stack[-1][1]):
            self.text.append(data)

    def english(self) -> set[str]:
        units = {"UTC", "KiB", "kB", "MB", "GB", "stderr", "SHA"}
        return set(re.findall(r"[A-Za-z][A-Za-z'-]+", " ".join(self.text))) - units


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


@pytest.fixture(scope="module")
def assignment():
    return load_assignment("epoll")


@pytest.fixture(scope="module")
def hand_in(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hand-in")
    (folder / "server.py").write_text(SOURCE, encoding="utf-8")
    return folder


def _result(assignment, folder: Path, checks, ident: str = "bob") -> SubmissionResult:
    sub = Submission(ident, folder, folder, "server.py", files=("server.py",))
    return SubmissionResult(sub, assignment, tuple(checks), 4.0, "local", dict(LIMITS))


@pytest.fixture(scope="module")
def result(assignment, hand_in) -> SubmissionResult:
    """`unregister` fails citing line 9, `robustness` with one line per scenario; huge
    output on `echo`; the rest pass."""
    checks = []
    for spec in assignment.checks:
        if spec.id == "unregister":
            checks.append(
                CheckResult(
                    spec,
                    False,
                    msg("not run: {why}", why=verbatim("server.py:9 closed conn while registered")),
                    processes=(ProgramRun(stdout=f"hi {HOSTILE}\n", exit="exited with code 1"),),
                )
            )
        elif spec.id == "robustness":
            reason = join(
                [
                    verbatim("✗ peer reset: died"),
                    verbatim("✗ half-close: hung"),
                    verbatim("✓ slow reader"),
                ],
                "\n",
            )
            checks.append(CheckResult(spec, False, reason))
        elif spec.id == "echo":
            big = "A" * 50_000 + "MIDDLE" + "Z" * 50_000
            run = ProgramRun(stdout=big, output_bytes=len(big), exit="exited with code 0")
            checks.append(CheckResult(spec, True, msg(""), processes=(run,)))
        else:
            checks.append(CheckResult(spec, True, msg("")))
    return _result(assignment, hand_in, checks)


# --- languages -----------------------------------------------------------------------------


def test_html_lang_follows_the_speaker(result, assignment):
    assert '<html lang="zh">' in render.render_report(result, speaker=ZH)
    assert '<html lang="en">' in render.render_report(result, speaker=EN)
    assert '<html lang="zh">' in render.render_index([result], assignment, speaker=BOTH)


def test_both_puts_chinese_first_then_english(result):
    html = render.render_report(result, speaker=BOTH)
    zh = html.index('<span lang="zh">未通过的原因：</span>')
    en = html.index('<span lang="en" class="alt">Why it failed:</span>')
    assert zh < en


def test_english_page_has_no_chinese(result, assignment):
    for html in (
        render.render_report(result, speaker=EN),
        render.render_index([result], assignment, speaker=EN),
    ):
        assert not re.search(r"[\u4e00-\u9fff]", html)


def test_chinese_pages_keep_english_inside_code_and_identifiers(result, assignment):
    for html in (
        render.render_report(result, speaker=ZH, nav=NAV),
        render.render_index([result], assignment, speaker=ZH),
    ):
        assert Visible(html).english() == set()
        assert "未通过" in html


def test_course_listing_in_chinese_has_no_stray_english(assignment):
    report = json.loads((DATA / "course_listing_report.json").read_text(encoding="utf-8"))
    sub = Submission("listing", Path("/nonexistent"), Path("/nonexistent"), "server.py")
    graded = score(assignment, sub, RunOutcome(report, 8.7, "local", dict(LIMITS)))
    assert Visible(render.render_report(graded, speaker=ZH)).english() == set()
    assert Visible(render.render_index([graded], assignment, speaker=ZH)).english() == set()


# --- verdict first -------------------------------------------------------------------------


def test_verdict_section_holds_score_failures_and_the_students_line(result):
    html = render.render_report(result, speaker=EN)
    verdict = html[html.index('<section id="verdict">') : html.index("</section>")]
    assert "80 / 100" in text_of(verdict) or "/ 100" in verdict
    assert verdict.count('class="failed-check') == 2
    assert "server.py:9 closed conn while registered" in verdict
    # The student's line, quoted from the hand-in, linked to the annotated source.
    assert '<a href="#src-L9"><code>server.py:9</code></a>' in verdict
    assert '<code class="src">conn.close()</code>' in verdict
    # Passed checks folded; sandbox details after the checks.
    assert '<details class="passed-checks">' in verdict
    assert html.index('id="verdict"') < html.index('id="checks"') < html.index('id="sandbox"')
    assert html.index('id="fold-echo"') > html.index('id="check-unregister"')


def test_a_reason_with_lines_shows_one_line_each(result):
    html = render.render_report(result, speaker=EN)
    assert re.search(r"peer reset: died</span><br><span[^>]*>✗ half-close: hung", html)


def test_the_verdict_shows_the_scenarios_that_failed_and_the_check_all_of_them(result):
    """At the top, what failed (the first screen holds it); in the check's own section, every
    scenario with its verdict."""
    html = render.render_report(result, speaker=EN)
    verdict = html[html.index('<section id="verdict">') : html.index("</section>")]
    assert "✗ peer reset: died" in verdict and "✗ half-close: hung" in verdict
    assert "✓ slow reader" not in verdict
    own = html[html.index('id="check-robustness"') :]
    assert "✓ slow reader" in own and "✗ peer reset: died" in own


def test_output_excerpts_are_bounded_with_the_byte_count(result):
    html = render.render_report(result, speaker=EN)
    assert "MIDDLE" not in html
    assert "A" * 3000 in html and "Z" * 3000 in html and "A" * 10_000 not in html
    assert f"{100_006 - 2 * render.EXCERPT_BYTES} bytes not shown" in html
    assert "100 kB (100006 bytes)" in text_of(html)


def test_small_outputs_are_whole(result):
    assert render.excerpt("short")["head"] == "short"
    cut = render.excerpt("é" * 10_000, limit=100)
    assert cut["omitted"] == 20_000 - 200 and len(cut["head"].encode()) <= 100


# --- the source, annotated -----------------------------------------------------------------


def test_source_is_shown_escaped_with_the_cited_line_annotated(result):
    html = render.render_report(result, speaker=EN)
    source = html[html.index('<section id="source">') :]
    source = source[: source.index("</section>")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }}" in source
    assert "<script>alert(1)" not in source
    line = source[source.index('id="src-L9"') :]
    line = line[: line.index('id="src-L10"')]
    assert "cited" in source[source.index('id="src-L9"') - 40 : source.index('id="src-L9"')]
    assert "closed conn while registered" in line and "#check-unregister" in line
    assert source.count('class="src-line"') + source.count('class="src-line cited"') == 10


def test_a_large_source_is_shown_around_its_cited_lines(assignment, tmp_path):
    lines = [f"x{n} = {n}" for n in range(1, 1001)]
    (tmp_path / "server.py").write_text("\n".join(lines), encoding="utf-8")
    spec = assignment.checks[0]
    reason = msg("not run: {why}", why=verbatim("see server.py:500"))
    big = _result(assignment, tmp_path, [CheckResult(spec, False, reason)])
    html = render.render_report(big, speaker=EN)
    assert 'id="src-L500"' in html and 'id="src-L497"' in html and 'id="src-L503"' in html
    assert 'id="src-L1"' not in html and 'id="src-L504"' not in html
    assert "496 lines not shown" in html and "497 lines not shown" in html
    assert WHOLE_FILE_LINES < 1000


def test_no_source_section_when_the_file_is_not_at_hand(assignment):
    spec = assignment.checks[0]
    gone = _result(assignment, Path("/nonexistent"), [CheckResult(spec, False, msg(""))])
    html = render.render_report(gone)
    assert 'id="source"' not in html


# --- the class view ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def klass(assignment, hand_in, result):
    alice = _result(
        assignment, hand_in, [CheckResult(s, True, msg("")) for s in assignment.checks], "alice"
    )
    carol = SubmissionResult(
        Submission("carol", hand_in, hand_in, "server.py"),
        assignment,
        result.checks,
        2.0,
        "local",
    )
    return [result, alice, carol]


def test_class_table_scrolls_sorts_and_has_a_main_reason(assignment, klass):
    html = render.render_index(klass, assignment, speaker=EN)
    assert '<div class="table-scroll"' in html and 'id="class-table"' in html
    head = html[html.index("<thead>") : html.index("</thead>")]
    assert "Main reason" in head and head.count("data-sort=") == 4 + len(assignment.checks)
    bob = html[html.index('<td data-v="bob">') :]
    bob = bob[: bob.index("</tr>")]
    assert '<td class="main-reason" data-v="unregister">' in bob
    assert "closed conn while registered" in bob


def test_failure_reasons_open_by_keyboard_and_touch(assignment, klass):
    html = render.render_index(klass, assignment, speaker=EN)
    fails = re.findall(r'<td class="mark fail"[^>]*>(.*?)</td>', html)
    # A <details> opens by click, tap, Enter or Space, with no script.
    assert fails and all('<details class="mark-why"><summary' in f for f in fails)
    assert all('<span class="why">' in f for f in fails)


def test_most_common_failure_per_check_names_example_students(assignment, klass):
    html = render.render_index(klass, assignment, speaker=EN)
    rates = html[html.index('<table class="rates">') :]
    row = rates[rates.index("<code>unregister</code>") :]
    row = row[: row.index("</tr>")]
    assert "closed conn while registered" in row
    assert "2 of 2 failures" in row
    assert 'href="bob/report.html"' in row and 'href="carol/report.html"' in row


@pytest.mark.parametrize("speaker", [ZH, EN, BOTH], ids=lambda s: s.lang)
def test_student_text_is_escaped_in_every_language(assignment, speaker):
    spec = next(s for s in assignment.checks if s.id == "echo")
    bad = CheckResult(spec, False, msg("not run: {why}", why=verbatim(HOSTILE)))
    r = _result(assignment, Path("/nonexistent"), [bad], "mallory")
    for html in (
        render.render_index([r], assignment, speaker=speaker),
        render.render_report(r, speaker=speaker),
    ):
        assert "<script>alert(1)" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }} {% raw %}" in html
        assert "alert(1)</script> 49" not in text_of(html)


def test_report_links_back_to_the_index_and_neighbours(result):
    html = render.render_report(result, speaker=EN, nav=NAV)
    pager = html[html.index('<nav class="pager"') : html.index("</nav>")]
    assert 'href="../index.html"' in pager and 'href="../alice/report.html"' in pager
    assert 'rel="next"' not in pager
    assert '<nav class="pager"' not in render.render_report(result, speaker=EN)


def test_latin_runs_in_chinese_sentences_are_marked_and_entities_kept():
    words = Words(ZH)
    html = str(words.pick(Text("x", "用 recv() 读 <b> & EVENT_WRITE")))
    assert '<span translate="no">recv()</span>' in html
    assert '<span translate="no">EVENT_WRITE</span>' in html
    assert '&lt;<span translate="no">b</span>&gt; &amp;' in html


def test_pythons_own_line_forms_are_cited(assignment, hand_in):
    spec = assignment.checks[0]
    reason = msg(
        "not run: {why}", why=verbatim("SyntaxError: '(' was never closed (server.py, line 4)")
    )
    r = _result(assignment, hand_in, [CheckResult(spec, False, reason)])
    html = render.render_report(r, speaker=EN)
    verdict = html[html.index('<section id="verdict">') : html.index("</section>")]
    assert '<code class="src">srv.bind((&#34;&#34;, 8888))</code>' in verdict


def test_source_is_read_from_the_hand_in_when_the_copy_is_gone(assignment, hand_in, tmp_path):
    spec = assignment.checks[0]
    reason = msg("not run: {why}", why=verbatim("server.py:9"))
    sub = Submission("bob", hand_in, tmp_path / "gone", "server.py")
    r = SubmissionResult(sub, assignment, (CheckResult(spec, False, reason),), 1.0, "local")
    assert 'id="src-L9"' in render.render_report(r)
    # Not what was graded any more: no source rather than the wrong one.
    other = FileHash("server.py", 3, "0" * 64)
    changed = Submission("bob", hand_in, tmp_path / "gone", "server.py", hashes=(other,))
    r = SubmissionResult(changed, assignment, r.checks, 1.0, "local")
    assert 'id="source"' not in render.render_report(r)
