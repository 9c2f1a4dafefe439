"""The harness ↔ host contract: argv, report and tracer vocabulary, as both sides read them."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from grader import score as score_stage
from grader.contract import (
    EXPLAINING,
    TRACE_KEPT,
    CheckMetadata,
    HarnessArgs,
    HarnessReport,
    ProcessReport,
    StageReport,
    Story,
    StoryLine,
    TestReport,
    TraceEvent,
    TraceKind,
    msg,
    verbatim,
)
from grader.harness import run
from grader.harness.launch import TRACER_FILES
from grader.harness.report import trace_notes

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"


# --- the harness's command line ------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        HarnessArgs("/kit/checks.py", "/sub", "/out/report.json", "/work"),
        HarnessArgs(
            "/kit/checks.py",
            "/sub",
            "/out/r.json",
            "/work",
            entry="client.py",
            user=1000,
            only=("runs", "echo"),
            lanes=4,
        ),
    ],
)
def test_argv_round_trip(args):
    argv = args.to_argv()
    assert argv[:2] == ["-m", "grader.harness.run"]
    assert HarnessArgs.from_argv(argv) == args
    assert HarnessArgs.from_argv(argv[2:]) == args


def test_argv_keeps_the_spelling_the_sandboxes_use():
    args = HarnessArgs(
        "c.py", "s", "r.json", "w", entry="server.py", user=7, only=("a", "b"), lanes=3
    )
    assert args.to_argv() == [
        "-m",
        "grader.harness.run",
        "--checks-file",
        "c.py",
        "--submission",
        "s",
        "--entry",
        "server.py",
        "--report",
        "r.json",
        "--work",
        "w",
        "--only",
        "a,b",
        "--lanes",
        "3",
        "--user",
        "7",
    ]


def test_a_bad_command_line_is_refused():
    with pytest.raises(SystemExit):
        HarnessArgs.from_argv(["--submission", "s"])
    with pytest.raises(SystemExit):  # the hand-in's problem is the host's to report
        HarnessArgs.from_argv(HarnessArgs("c", "s", "r", "w").to_argv() + ["--entry-problem", "x"])


def test_the_harness_hands_the_request_to_its_plugin():
    args = HarnessArgs(
        "/kit/checks.py", "/sub", "/out/r.json", "/work", user=5, only=("runs",), lanes=4
    )
    pytest_args = run.pytest_args(args)
    assert pytest_args[0] == "/kit/checks.py"
    assert pytest_args[pytest_args.index("--json-report-file") + 1] == "/out/r.json"
    tail = pytest_args[-len(args.plugin_argv()) :]
    assert tail == [
        "--sg-submission",
        "/sub",
        "--sg-entry",
        "server.py",
        "--sg-work",
        "/work",
        "--sg-checks",
        "runs",
        "--sg-lanes",
        "4",
        "--sg-user",
        "5",
    ]


# --- the report ----------------------------------------------------------------------------

EVENTS = [
    {"fd": 5, "requested": ["", 8888], "at": "server.py:8", "ev": "bind", "t": 447.1},
    {"timeout": None, "selector": "EpollSelector", "at": "server.py:32", "ev": "select"},
    {"ev": "crash", "type": "ValueError", "message": "<b>", "at": None},
    {"ev": "something_new", "payload": [1, 2]},
]


@pytest.mark.parametrize("event", EVENTS)
def test_trace_event_round_trip(event):
    parsed = TraceEvent.from_json(event)
    again = TraceEvent.from_json(parsed.to_json())
    assert again == parsed
    expected = {k: v for k, v in event.items() if not (k == "at" and v is None)}
    assert parsed.to_json() == expected


def test_records_round_trip():
    story = Story(
        lines=(
            StoryLine("did", msg("client A connected"), 0.1),
            StoryLine("saw", verbatim("client A got its 5 bytes back"), None),
        ),
        measurements={"cpu_fresh_percent": 0.5, "note": "n/a"},
    )
    proc = ProcessReport(
        stdout="hi\n",
        stderr="",
        output_bytes=3,
        exit_code=-9,
        trace=tuple(TraceEvent.from_json(e) for e in EVENTS),
    )
    meta = CheckMetadata(story=story, processes=(proc, ProcessReport()))
    test = TestReport(
        "checks.py::test_echo",
        "failed",
        (
            ("setup", StageReport("passed")),
            ("call", StageReport("failed", "Failed: no reply", "longrepr")),
        ),
        meta,
    )
    report = HarnessReport((test, TestReport("checks.py::test_runs", "passed")))
    for record in (story, proc, meta, test, report):
        assert type(record).from_json(json.loads(json.dumps(record.to_json()))) == record
    assert report.find("echo") is test and report.find("nothing") is None


def test_the_reports_on_disk_read_and_write_unchanged():
    """The wire format is what pytest-json-report holds today: reading a real report and
    writing its metadata back gives the same JSON."""
    raw = json.loads((DATA / "course_listing_report.json").read_text(encoding="utf-8"))
    report = HarnessReport.from_json(raw)
    assert len(report.tests) == len(raw["tests"]) == 10
    for test, original in zip(report.tests, raw["tests"], strict=True):
        assert test.metadata.to_json() == original["metadata"]
        assert HarnessReport.from_json(report.to_json()) == report


def test_odd_reports_read_as_empty_rather_than_crash():
    assert HarnessReport.from_json(None) == HarnessReport()
    assert HarnessReport.from_json({"tests": [17, {"nodeid": 3}]}).tests[0].nodeid == "3"
    meta = CheckMetadata.from_json(
        {"story": [], "processes": [None, {"exit_code": "x", "trace": "nope"}]}
    )
    assert meta.processes[1] == ProcessReport()
    assert TraceEvent.from_json(17) == TraceEvent(kind="", fields={"value": 17})


def test_the_harness_keeps_only_explaining_events():
    events = [{"ev": "register", "fd": 4}, {"ev": "crash", "type": "E"}] * (TRACE_KEPT + 1)
    kept = trace_notes(events)
    assert len(kept) == TRACE_KEPT
    assert {e.known for e in kept} == {TraceKind.CRASH}
    assert TraceKind.REGISTER not in EXPLAINING


# --- the tracer's vocabulary ---------------------------------------------------------------


def _emitted_kinds(source: str) -> set[str]:
    """Every event kind one of the tracer's files writes: the first argument of each
    _emit(...) call, a literal string or `self._events[...]`, whose values are the literal
    `_events = {...}` tables of the poll and epoll proxies."""
    kinds: set[str] = set()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if isinstance(getattr(node, "value", None), ast.Dict) and any(
            isinstance(t, ast.Name) and t.id == "_events" for t in targets
        ):
            for value in node.value.values:
                assert isinstance(value, ast.Constant) and isinstance(value.value, str), (
                    f"tracer line {node.lineno}: an event kind must be a literal string"
                )
                kinds.add(value.value)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "_emit"
            and node.args
        ):
            first = node.args[0]
            if (
                isinstance(first, ast.Subscript)
                and isinstance(first.value, ast.Attribute)
                and first.value.attr == "_events"
            ):
                continue
            if isinstance(first, ast.Name) and first.id == "kind":
                continue  # wrap_keyed(kind)'s, collected from its calls below
            assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                f"tracer line {node.lineno}: an event kind must be a literal string"
            )
            kinds.add(first.value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "wrap_keyed"
        ):
            first = node.args[0]
            assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                f"tracer line {node.lineno}: an event kind must be a literal string"
            )
            kinds.add(first.value)
    return kinds


def test_every_event_the_tracer_writes_is_in_the_vocabulary():
    # The launcher (boot.py) and its hooks (tracehooks.py) together.
    kinds = set().union(*(_emitted_kinds(p.read_text(encoding="utf-8")) for p in TRACER_FILES))
    assert {
        "register",
        "unregister",
        "close",
        "setblocking",
        "crash",
        "poll_wait",
        "epoll_register",
        "select_call",
        "blocking_call",
    } <= kinds
    values = {k.value for k in TraceKind}
    assert kinds <= values, f"not in grader.contract.TraceKind: {sorted(kinds - values)}"


def test_the_running_tracer_writes_only_known_kinds(tmp_path):
    from tests.test_harness_units import run_boot

    events, out = run_boot(
        tmp_path,
        """\
        import selectors, socket, threading
        sel = selectors.EpollSelector()
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(5)
        srv.setblocking(False)
        srv.settimeout(1.0)
        sel.register(srv, selectors.EVENT_READ)
        sel.select(timeout=0)
        sel.unregister(srv)
        srv.close()
        threading.Thread(target=lambda: None).start()
        raise SystemExit(3)
        """,
    )
    kinds = {e["ev"] for e in events}
    assert {
        "start",
        "bind",
        "listen",
        "register",
        "select",
        "unregister",
        "close",
        "setblocking",
        "settimeout",
        "thread",
        "exit",
    } <= kinds, out
    assert all(TraceKind.of(k) is not None for k in kinds), kinds


def test_every_kind_reads_as_a_sentence():
    missing = [k for k in TraceKind if k not in score_stage.TRACE_NOTES]
    assert not missing


# --- who depends on what -------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_render_reads_only_models():
    # The render stage (render.py and its render_*.py helpers) reads models, and speaks
    # through the catalogue (grader.i18n, the contract's Message): never harness internals.
    allowed = {"grader.models", "grader.i18n", "grader.contract", "grader.contract.message"}
    for path in sorted((ROOT / "grader").glob("render*.py")):
        names = _imports(path)
        kit = {n for n in names if n == "grader" or n.startswith(("grader.", "."))}
        assert kit - {n for n in kit if n.startswith("grader.render")} <= allowed, path.name
        third_party = {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {"grader"}
        assert third_party <= {"jinja2", "markupsafe"}, path.name


def test_the_contract_needs_only_the_standard_library():
    package = ROOT / "grader" / "contract"
    names = set().union(*(_imports(p) for p in sorted(package.glob("*.py"))))
    # Its modules import one another (grader.contract.*), nothing else of the kit.
    outside = {n for n in names if n != "grader.contract" and not n.startswith("grader.contract.")}
    assert {n.split(".")[0] for n in outside} <= set(sys.stdlib_module_names)
