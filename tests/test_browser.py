"""The reports as a student and a TA open them: headless Chromium on a graded class (issue 9.10).

A small class is graded once with the local sandbox (a full-marks hand-in, one whose output and
source carry markup and template syntax and that fails four checks, one that cannot be
graded), then its pages are opened from disk. Screenshots land in test-artifacts/browser/.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.browser_support import (
    VIEWPORT,
    english_outside_code,
    english_runs,
    screenshot,
    start_driver,
    visit,
)
from tests.conftest import reference_file

# Grading takes most of a minute; each test then takes a second or a few. Under xdist the module
# is a group of its own, as every file is (tests/conftest.py): its class and browser are its state.
pytestmark = pytest.mark.slow

HOSTILE = "<script>window.__x=1</script>{{ 7*7 }}"

# An epoll server that never handles a departing client (fails unregister, idle_cpu, cleanup,
# robustness) and puts HOSTILE in its output, its error output and its source, on the lines
# its verdicts cite.
HOSTILE_SERVER = f"""\
# {HOSTILE}
import selectors
import socket
import sys

BANNER = "{HOSTILE}"
sel = selectors.EpollSelector()
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("", 8888))
server.listen(100)
server.setblocking(False)
print(BANNER, flush=True)
print(BANNER, file=sys.stderr, flush=True)


def read(conn):
    data = conn.recv(1024)  # {HOSTILE}
    if data:
        conn.send(data)


def accept(server):
    conn, addr = server.accept()
    conn.setblocking(False)
    sel.register(conn, selectors.EVENT_READ, read)  # {HOSTILE}


sel.register(server, selectors.EVENT_READ, accept)
while True:
    for key, mask in sel.select():
        key.data(key.fileobj)
"""

# ids whose alphabetical order is not their score order (ada 100, bob in between, zoe 0).
FULL_MARKS, HOSTILE_ID, NOT_GRADABLE = "ada", "bob", "zoe"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded once (`grade CLASS --sandbox local`): its out folder."""
    from grader.cli import main

    base = tmp_path_factory.mktemp("browser")
    cls = base / "class"
    (cls / FULL_MARKS).mkdir(parents=True)
    shutil.copyfile(reference_file("epoll"), cls / FULL_MARKS / "server.py")
    (cls / HOSTILE_ID).mkdir()
    (cls / HOSTILE_ID / "server.py").write_text(HOSTILE_SERVER, encoding="utf-8")
    (cls / NOT_GRADABLE).mkdir()
    (cls / NOT_GRADABLE / "readme.txt").write_text("no server.py here\n", encoding="utf-8")
    out = base / "out"
    argv = [str(cls), "--assignment", "epoll", "--sandbox", "local", "--out", str(out)]
    code = main([*argv, "--jobs", "2"])
    assert code == 0, f"grade exited {code}"
    return out


@pytest.fixture(scope="module")
def graded_zh(graded, tmp_path_factory):
    """The same class re-rendered in Chinese from its saved results (`grade report --lang zh`)."""
    from grader.cli import main

    out = tmp_path_factory.mktemp("browser-zh") / "out"
    shutil.copytree(graded, out)
    try:
        code = main(["report", str(out), "--lang", "zh"])
    except SystemExit as exc:  # argparse's way of refusing a command it does not know
        code = exc.code
    assert code == 0, f"`grade report OUT --lang zh` (re-render in Chinese) exited {code}"
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_driver(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def failed_checks(out, ident: str) -> list[str]:
    results = json.loads((out / ident / "results.json").read_text(encoding="utf-8"))
    return [t["number"] for t in results["tests"] if t["status"] == "failed"]


# --- every page ---------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["index.html", f"{HOSTILE_ID}/report.html"])
def test_no_console_errors_and_no_network(browser, graded, page):
    seen = visit(browser, graded / page)
    screenshot(browser, page.replace("/", "-").removesuffix(".html"))
    assert seen.requests, "the browser logged no request at all: the network log is not working"
    assert seen.remote == [], f"{page} asked the network for {seen.remote}"
    assert seen.errors == [], f"{page} logged console errors: {seen.errors}"


# --- the index ----------------------------------------------------------------------------

# Each row's student (its report link, else its first cell) and each header's sort key per row
# (data-v as today's script reads it, else data-sort, else the cell's text).
ROWS_JS = """
const table = document.querySelector('#class-table') || document.querySelector('table.sortable');
if (!table) { return null; }
return [...table.tBodies[0].rows].map(row => {
  const link = row.querySelector('a[href$="report.html"]');
  const id = link ? decodeURIComponent(link.getAttribute('href').split('/')[0])
                  : row.cells[0].textContent.trim();
  return [id, [...row.cells].map(c => c.getAttribute('data-v') ?? c.getAttribute('data-sort')
                                       ?? c.textContent.trim())];
});
"""
# Sortable headers: those with a button (today) or a data-sort attribute.
HEADERS_JS = """
const table = document.querySelector('#class-table') || document.querySelector('table.sortable');
return [...table.tHead.rows[0].cells].map((th, i) => [i, th.querySelector('button') || th])
  .filter(([i, th]) => th.tagName === 'BUTTON' || th.hasAttribute('data-sort'));
"""
# Sorted one way or the other, compared as the browser compares: as numbers when every key is
# one, else as text in the reader's locale (localeCompare), so that a Chinese or mixed column
# is judged by the same rule a reader sees.
ORDERED_JS = """
const keys = arguments[0];
const numbers = keys.map(k => parseFloat(k));
const cmp = numbers.every(n => !isNaN(n)) ? (i, j) => numbers[i] - numbers[j]
                                          : (i, j) => keys[i].localeCompare(keys[j]);
const pairs = keys.slice(1).map((_, i) => cmp(i, i + 1));
return pairs.every(c => c <= 0) || pairs.every(c => c >= 0);
"""


def test_index_sorts_by_a_clicked_header(browser, graded):
    visit(browser, graded / "index.html")
    rows = browser.execute_script(ROWS_JS)
    assert rows, "the index has no class table (#class-table or table.sortable)"
    before = [ident for ident, _ in rows]
    assert sorted(before) == [FULL_MARKS, HOSTILE_ID, NOT_GRADABLE]

    orders = []
    for col, handle in browser.execute_script(HEADERS_JS):
        for _ in range(2):  # once each way
            handle.click()
            rows = browser.execute_script(ROWS_JS)
            keys = [cells[col] for _, cells in rows]
            in_order = browser.execute_script(ORDERED_JS, keys)
            assert in_order, f"column {col} clicked, rows not in its order: {keys}"
            orders.append([ident for ident, _ in rows])
    screenshot(browser, "index-sorted")
    assert orders, "no header of the class table can be clicked to sort"
    # The student column both ways, and the score (a number, not text: '100' > '45' > '0').
    assert before[::-1] in orders, f"rows never reordered: {orders}"
    by_score = [NOT_GRADABLE, HOSTILE_ID, FULL_MARKS]
    assert by_score in orders and by_score[::-1] in orders, f"no numeric score order: {orders}"


# --- a student's report -------------------------------------------------------------------


def test_student_markup_in_output_and_source_shows_as_text(browser, graded):
    page = graded / HOSTILE_ID / "report.html"
    visit(browser, page)
    assert browser.execute_script("return typeof window.__x") == "undefined"
    text = browser.execute_script("return document.body.textContent")
    assert HOSTILE in text, "the student's output is not shown literally"
    assert not re.search(r"</script>\s*49", text), "the student's {{ 7*7 }} was evaluated"
    sources = browser.execute_script("return [...document.scripts].map(s => s.textContent)")
    assert not [s for s in sources if "__x" in s], "the student's <script> became a script"
    raw = page.read_text(encoding="utf-8")
    assert "<script>window.__x" not in raw, "the student's markup is in the HTML unescaped"


@pytest.mark.parametrize("pages", ["graded", "graded_zh"])
def test_failed_checks_are_on_the_first_screen(browser, request, pages):
    graded = request.getfixturevalue(pages)
    visit(browser, graded / HOSTILE_ID / "report.html")
    screenshot(browser, ("zh-" if pages == "graded_zh" else "") + "report-first-screen")
    boxes = browser.execute_script(
        """
        const verdict = document.querySelector('#verdict');
        if (!verdict) { return null; }
        return [...verdict.querySelectorAll('.failed-check')].map(e => {
          const r = e.getBoundingClientRect();
          return {text: e.textContent.trim().slice(0, 80), top: r.top, bottom: r.bottom,
                  left: r.left, right: r.right, shown: e.checkVisibility()};
        });
        """
    )
    assert boxes is not None, 'the report has no <section id="verdict">'
    failed = failed_checks(graded, HOSTILE_ID)
    assert len(failed) >= 2, f"the hostile hand-in was to fail several checks, it failed {failed}"
    assert len(boxes) == len(failed), f"{len(boxes)} .failed-check in #verdict for {failed}"
    width, height = VIEWPORT
    off = [
        b
        for b in boxes
        if not b["shown"]
        or b["top"] < 0
        or b["left"] < 0
        or b["bottom"] > height
        or b["right"] > width
    ]
    assert off == [], f"failed checks outside the first {width}x{height} screen: {off}"


# --- Chinese pages ------------------------------------------------------------------------


def test_english_runs_definition():
    assert english_runs("The server crashed at line 5") == ["The server crashed at line"]
    assert english_runs("服务器在 server.py:14 阻塞于 recv(),fd 5 空闲 0.12 s") == []
    assert english_runs("连接 A 已关闭 (ConnectionResetError),SIGKILL 64 KiB") == []
    assert english_runs("检查失败：the grader stopped it") == ["the grader stopped it"]
    assert english_runs("non-blocking don't work here") == ["non-blocking don't work here"]
    assert english_runs("Click a column heading") == ["Click a column heading"]
    assert english_runs("客户端 A B 和 C") == []


@pytest.mark.parametrize("page", ["index.html", f"{HOSTILE_ID}/report.html"])
def test_chinese_pages_have_no_english_sentence(browser, graded_zh, page):
    seen = visit(browser, graded_zh / page)
    screenshot(browser, "zh-" + page.replace("/", "-").removesuffix(".html"))
    assert seen.errors == [], f"{page} (zh) logged console errors: {seen.errors}"
    assert browser.execute_script("return document.documentElement.lang").startswith("zh")
    english = english_outside_code(browser)
    assert english == [], f"English outside code in the zh {page}:\n" + "\n".join(english)
