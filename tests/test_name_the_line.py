"""Name the line, always (issue 9 item 6): over the fixture tables' graded classes, at least
9 of 10 failed checks whose failure has a student line to name cite it as '<entry>:<n>'.

Left out, since there is no line of the student's to name: checks not judged (the server
never listened), programs that never ran (a syntax error, a hand-in that cannot be graded),
grader errors, and checks whose subject is absent ("not applicable")."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from grader import saved
from grader.harness import procobs, stackdump
from grader.harness.checks import evidence
from grader.harness.launch import StudentProcess
from grader.models import NOT_GRADABLE, CheckResult, SubmissionResult
from tests.conftest import assignment_names, expected

GOAL = 0.9
# A student line as the reasons cite it: 'server.py:14', 'epoll_server.py:31'.
CITED = re.compile(r"\b[\w.-]+\.py:\d+")
# Reasons with no student line to name.
NO_LINE = (
    re.compile(r"^not judged"),
    re.compile(r"^not applicable"),
    re.compile(r"SyntaxError|IndentationError|TabError"),
    re.compile(r"listened on no TCP port|stopped before it listened"),
)


def has_line(check: CheckResult, result: SubmissionResult) -> bool:
    """Whether this failure is one where the student wrote a line the kit could name."""
    if check.grader_error or result.status == NOT_GRADABLE:
        return False
    reason = str(check.reason)  # the English, whatever language the reports speak
    return not any(p.search(reason) for p in NO_LINE)


def misses(assignment: str, out) -> tuple[int, list[str]]:
    """(how many failed checks have a line to name, those among them that name none), read
    from each hand-in's saved result.json."""
    counted, missed = 0, []
    for ident in sorted(expected(assignment)):
        path = out / ident / saved.RESULT_FILE
        if not path.exists():
            continue
        result = saved.read(path)
        for check in result.checks:
            if check.passed or not has_line(check, result):
                continue
            counted += 1
            reason = str(check.reason)
            if not CITED.search(reason):
                missed.append(f"{assignment}/{ident} {check.spec.id}: {reason[:200]}")
    return counted, missed


def test_failed_checks_name_the_line(graded_local, capsys):
    """Over every fixture table together, as the issue counts them (each table is graded once
    per session, and shared with the verdict tests)."""
    counted, missed = 0, []
    lines = []
    for assignment in assignment_names():
        _, out = graded_local(assignment)
        n, miss = misses(assignment, out)
        counted, missed = counted + n, missed + miss
        lines.append(f"{assignment}: {n - len(miss)}/{n} cite a line")
    ratio = (counted - len(missed)) / counted if counted else 1.0
    with capsys.disabled():
        print("\n" + "\n".join(lines))
        print(f"all tables: {counted - len(missed)}/{counted} cite a line ({ratio:.0%})")
        for m in missed:
            print("  miss:", m)
    assert counted, "no failed check with a line to name: the tables were not graded"
    assert ratio >= GOAL, "\n".join(missed)


DUMP = """\
Thread 0x00007f3e58d136c0 (most recent call first):
  File "/run/sub/server.py", line 40 in heartbeat
  File "/usr/lib/python3.11/threading.py", line 982 in run

Current thread 0x00007f3e599c7b80 (most recent call first):
  File "/kit/tracehooks.py", line 276 in call
  File "/run/sub/helpers.py", line 3 in read_one
  File "/run/sub/server.py", line 14 in serve
  File "/run/sub/server.py", line 30 in <module>
  File "<frozen runpy>", line 88 in _run_code
"""


def test_the_dump_names_the_main_threads_innermost_student_line():
    """The main thread is the last block; the tracer's and the library's frames are not the
    student's; a frame outside the submission (even one that looks inside) never counts."""
    assert stackdump.innermost_site(DUMP, Path("/run/sub")) == "helpers.py:3"
    assert stackdump.innermost_site(
        DUMP.replace("/run/sub/helpers.py", "/x.py"), Path("/run/sub")
    ) == ("server.py:14")
    assert stackdump.innermost_site(DUMP, Path("/elsewhere")) is None
    assert (
        stackdump.innermost_site('  File "/run/sub/../etc/x.py", line 1 in f\n', Path("/run/sub"))
        is None
    )
    assert stackdump.innermost_site("garbage\n\x00", Path("/run/sub")) is None


def _program(tmp_path: Path, body: str) -> tuple[subprocess.Popen, Path]:
    work = tmp_path / "sub"
    work.mkdir()
    dump = tmp_path / "stack.txt"
    dump.touch()
    (work / "server.py").write_text(body)
    proc = subprocess.Popen(
        [sys.executable, "-I", "server.py", str(dump)], cwd=work, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc, dump


LISTENS = (
    "import faulthandler, signal, socket, sys\n"
    "out = open(sys.argv[1], 'a')\n"
    "faulthandler.register(signal.SIGUSR2, file=out, all_threads=True, chain=False)\n"
    "a, b = socket.socketpair()\n"
    "print('ready', flush=True)\n"
    "data = a.recv(10)\n"
)


def test_a_blocked_program_tells_its_line_and_keeps_going(tmp_path):
    """Blocked in recv(): the dump names the line, and the call resumes (PEP 475)."""
    proc, dump = _program(tmp_path, LISTENS)
    try:
        deadline = time.monotonic() + 10
        while procobs.where(proc.pid).get("state") != "S" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stackdump.current_site(proc.pid, dump, tmp_path / "sub") == "server.py:6"
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_a_program_that_does_not_catch_the_signal_is_left_alone(tmp_path):
    """Ignoring (or taking over) the signal: nothing is sent, nothing waited for, and the
    program goes on; the reason keeps the kernel's words alone."""
    body = LISTENS.replace("print(", "signal.signal(signal.SIGUSR2, signal.SIG_IGN)\nprint(")
    proc, dump = _program(tmp_path, body)
    try:
        start = time.monotonic()
        assert not stackdump.answers(proc.pid)
        assert stackdump.current_site(proc.pid, dump, tmp_path / "sub") is None
        assert time.monotonic() - start < 1.0
        assert proc.poll() is None
        assert stackdump.STACK_SIGNAL == signal.SIGUSR2
    finally:
        proc.kill()
        proc.wait()


def test_a_socket_watched_for_writing_is_named_as_why_a_loop_spins():
    """EVENT_WRITE (POLLOUT, EPOLLOUT) on a connected socket is ready at once, every time:
    the registration that asked for it is the line to fix, unless it was modified away."""
    trace = [
        {"ev": "register", "fd": 3, "events": 1, "at": "server.py:10"},
        {"ev": "register", "fd": 5, "events": 3, "at": "server.py:20"},
    ]
    assert evidence.write_interest(trace) == trace[1]
    assert evidence.write_interest([*trace, {"ev": "modify", "fd": 5, "events": 1}]) is None
    assert evidence.write_interest([*trace, {"ev": "unregister", "fd": 5}]) == trace[1]
    assert evidence.write_interest([{"ev": "epoll_register", "fd": 6, "events": 5}]) is not None
    assert evidence.write_interest([{"ev": "epoll_register", "fd": 6, "events": 1}]) is None


BARRAGE = (
    "import socket, threading, time\n"
    "a, b = socket.socketpair()\n"
    "def feed():\n"
    "    for _ in range(200):\n"
    "        time.sleep(0.002)\n"
    "        b.send(b'x')\n"
    "    b.close()\n"
    "threading.Thread(target=feed, daemon=True).start()\n"
    "a.setblocking(False)\n"
    "got = 0\n"
    "while True:\n"
    "    try:\n"
    "        data = a.recv(1)\n"
    "    except BlockingIOError:\n"
    "        continue\n"
    "    if not data:\n"
    "        break\n"
    "    got += 1\n"
    "print('got', got, flush=True)\n"
)


def test_asking_for_the_line_never_breaks_the_program(tmp_path):
    """The tracer's stack handler, as the kit installs it, asked again and again while the
    program's non-blocking recv() fails with EAGAIN thousands of times: every byte arrives,
    every failure is a BlockingIOError (a signal between a call's failure and the reading of
    errno once made a correct server die of 'OSError: [Errno 0]'), and the program ends by
    itself with code 0."""
    work = tmp_path / "sub"
    work.mkdir()
    (work / "server.py").write_text(BARRAGE)
    proc = StudentProcess(entry=work / "server.py", workdir=work)
    proc.start()
    deadline = time.monotonic() + 30  # far above the 0.4 s the program takes unloaded
    asked = 0
    try:
        while proc.alive():
            assert time.monotonic() < deadline, "the program never ended"
            if stackdump.answers(proc.pid):
                os.kill(proc.pid, stackdump.STACK_SIGNAL)
                asked += 1
            time.sleep(0.002)  # the kit asks a few times a check; this, hundreds
    finally:
        proc.kill()
    assert asked > 20, asked  # the handler was there to be asked, many times
    assert proc.returncode() == 0, proc.stderr.text() if proc.stderr else ""
    assert proc.stdout is not None and proc.stdout.text().strip() == "got 200"
