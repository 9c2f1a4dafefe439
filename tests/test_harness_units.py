"""The harness's building blocks on their own: kernel observations and the tracer."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grader.harness import procobs
from grader.harness.launch import BOOT, TRACER_FILES, OutputTap, StudentProcess
from tests.conftest import ROOT


def test_descriptor_flags_and_epoll_interest_list_from_the_kernel():
    import os

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    blocking = socket.socket()
    sel = selectors.EpollSelector()
    sel.register(listener, selectors.EVENT_READ)
    try:
        snap = procobs.snapshot(os.getpid())
        assert snap.descriptors[listener.fileno()].nonblocking is True
        assert snap.descriptors[blocking.fileno()].nonblocking is False
        epolls = [d for d in snap.epolls() if listener.fileno() in d.epoll_targets]
        assert epolls and epolls[0].fd == sel.fileno()
        assert listener.fileno() in snap.watched()
        assert any(c.fd == listener.fileno() for c in snap.listeners())
    finally:
        sel.close()
        listener.close()
        blocking.close()


def run_boot(
    tmp_path: Path, source: str, extra: dict[str, str] | None = None, timeout: float = 20
) -> tuple[list[dict], str]:
    """Run `source` as server.py under the launcher, beside `extra` files; (trace, output)."""
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "server.py").write_text(textwrap.dedent(source))
    for name, text in (extra or {}).items():
        (sub / name).write_text(text)
    trace = tmp_path / "trace.jsonl"
    env = {
        "SG_TRACE": str(trace),
        "SG_ROOT": str(sub),
        "SG_PORT_ZERO": "1",
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-u", str(BOOT), str(sub / "server.py")],
        env=env,
        cwd=sub,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    return events, proc.stdout + proc.stderr


def test_tracer_names_the_line_that_closed_a_registered_socket(tmp_path):
    events, out = run_boot(
        tmp_path,
        """\
        import selectors, socket
        sel = selectors.EpollSelector()
        a, b = socket.socketpair()
        sel.register(a, selectors.EVENT_READ)
        a.close()
        sel.unregister(a)
        c, d = socket.socketpair()
        sel.register(c, selectors.EVENT_READ)
        sel.unregister(c)
        c.close()
        """,
    )
    bad = [e for e in events if e["ev"] == "close_registered"]
    assert len(bad) == 1, out
    assert bad[0]["at"] == "server.py:5" and bad[0]["registered_at"] == "server.py:4"
    assert any(e["ev"] == "close" and e["at"] == "server.py:10" for e in events)


def test_tracer_moves_fixed_ports_and_hides_its_environment(tmp_path):
    events, out = run_boot(
        tmp_path,
        """\
        import os, socket
        s = socket.socket()
        s.bind(("127.0.0.1", 8888))
        env = sorted(k for k in os.environ if k.startswith("SG_"))
        print("port", s.getsockname()[1], "env", env)
        """,
    )
    assert "env []" in out
    port = int(out.split()[1])
    assert port != 8888 and port > 0
    bind = next(e for e in events if e["ev"] == "bind")
    assert bind["requested"] == ["127.0.0.1", 8888] and bind["at"] == "server.py:3"


def test_tracer_reports_crash_site_and_ignores_shipped_sitecustomize(tmp_path):
    events, out = run_boot(
        tmp_path,
        "x = {}\nx['missing']\n",
        extra={
            "sitecustomize.py": "raise SystemExit('taken over')\n",
            "usercustomize.py": "raise SystemExit('taken over')\n",
            "evil.pth": "import os; os._exit(42)\n",
        },
    )
    crash = next(e for e in events if e["ev"] == "crash")
    assert crash["type"] == "KeyError" and crash["at"] == "server.py:2"
    assert "taken over" not in out and "KeyError: 'missing'" in out


def test_output_tap_keeps_head_and_tail_of_a_flood():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfor i in range(200000): sys.stdout.write('line %d\\n' % i)",
        ],
        stdout=subprocess.PIPE,
    )
    tap = OutputTap(proc.stdout)
    proc.wait(timeout=60)
    tap.join()
    text = tap.text()
    assert text.startswith("line 0\nline 1\n")
    assert text.rstrip().endswith("line 199999")
    assert "bytes not shown" in text
    assert len(text) < 64 * 1024


def test_fresh_copy_leaves_links_out(tmp_path):
    """The harness copies as root: a link to the checks must not become a readable copy."""
    from types import SimpleNamespace

    from grader.harness.plugin import Submission

    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "server.py").write_text("print('hi')\n")
    (tmp_path / "secret.txt").write_text("the checks")
    (sub / "peek.txt").symlink_to(tmp_path / "secret.txt")
    (sub / "dir_link").symlink_to(tmp_path)
    os.mkfifo(sub / "pipe")
    import socket as socket_module

    unix = socket_module.socket(socket_module.AF_UNIX)
    unix.bind(str(sub / "sock"))
    opts = {
        "--sg-submission": str(sub),
        "--sg-entry": "server.py",
        "--sg-work": str(tmp_path / "work"),
        "--sg-user": None,
        "--sg-python": None,
    }
    config = SimpleNamespace(getoption=opts.__getitem__, _sg_runs=0)
    copy = Submission(config).fresh_copy()
    unix.close()
    assert sorted(p.name for p in copy.iterdir()) == ["server.py"]


def test_trace_sites_never_reach_outside_the_submission(tmp_path):
    """The trace is written by the student's process: a site naming another file, a device
    or a malformed event must not be read, hang, or crash the harness."""
    from grader.harness.launch import StudentProcess

    work = tmp_path / "sub"
    work.mkdir()
    (work / "server.py").write_text("conn.close()  # bye\n")
    (tmp_path / "secret.txt").write_text("the checks\n")
    (work / "link.py").symlink_to(tmp_path / "secret.txt")
    os.mkfifo(work / "fifo.py")
    proc = StudentProcess(entry=work / "server.py", workdir=work)
    assert str(proc.quote("server.py:1")) == "server.py:1 (`conn.close()`)"
    for site in (
        "../secret.txt:1",
        "/etc/passwd:1",
        "link.py:1",
        "fifo.py:1",
        "/dev/zero:1",
        "server.py:x",
        "server.py:99",
        42,
        None,
        ["server.py:1"],
    ):
        assert proc.line_of(site) == "", site
    trace = tmp_path / "trace.jsonl"
    trace.write_text(
        "\n".join(
            [
                '{"ev": "crash", "at": {"nested": 1}, "message": "' + "x" * 5000 + '"}',
                "[" * 100000 + "]" * 100000,
                '{"ev": 7}',
                "not json",
                '{"ev": "close_registered", "fd": 5, "at": "server.py:1", '
                '"registered_at": "server.py:1"}',
            ]
        )
        + "\n"
    )
    proc.trace_path = trace
    events = proc.trace()
    assert [e["ev"] for e in events] == ["crash", "close_registered"]
    assert "at" not in events[0] and len(events[0]["message"]) == 500


def test_busy_share_does_not_shrink_when_the_cpus_are_crowded():
    """A busy loop runs all the time it is not kept waiting for a CPU, even when three others
    compete for two cores (its CPU share drops, that share does not); a sleeper runs none of
    it; and a loop that wakes every 10 ms for a moment stays low however long each wake-up
    waits for a CPU on the crowded machine (the wait is not counted as running)."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(4)]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    napper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nwhile True:\n    time.sleep(0.01)\n    sum(range(200))",
        ]
    )
    try:
        loop = procobs.measure_cpu(busy[0].pid, 0.8)
        idle = procobs.measure_cpu(sleeper.pid, 0.8)
        naps = procobs.measure_cpu(napper.pid, 0.8)
    finally:
        for p in [*busy, sleeper, napper]:
            p.kill()
            p.wait()
    assert loop is not None and idle is not None and naps is not None
    assert loop.busy_percent > 80, loop
    assert idle.busy_percent < 5, idle
    assert naps.busy_percent < 10, naps


def test_tcp_sockets_show_unread_bytes_and_the_accept_queue():
    """The receive queue of the server's end, found through its fd, is what it has not read;
    a listening socket's is its accept queue. An unread end of stream counts one."""
    pid = os.getpid()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    try:

        def mine(fd):
            return next(s for s in procobs.tcp_sockets(pid) if s.fd == fd)

        assert mine(listener.fileno()).state == "LISTEN"
        assert mine(listener.fileno()).rx_queue == 1  # one connection not accepted
        conn, _ = listener.accept()
        assert mine(listener.fileno()).rx_queue == 0
        client.sendall(b"abc")
        assert _eventually(lambda: mine(conn.fileno()).rx_queue == 3)
        assert mine(conn.fileno()).remote[1] == client.getsockname()[1]
        assert conn.recv(10) == b"abc"
        assert mine(conn.fileno()).rx_queue == 0
        client.close()
        assert _eventually(lambda: mine(conn.fileno()).state == "CLOSE_WAIT")
        assert mine(conn.fileno()).rx_queue == 1  # the FIN, not read yet
        assert conn.recv(10) == b""
        assert mine(conn.fileno()).rx_queue == 0
        conn.close()
    finally:
        listener.close()
        client.close()


def test_tcp_table_ways_agree_for_both_families():
    """The one-walk dump (both families), the per-family dumps and /proc give the same rows."""
    from grader.harness import sockdiag

    held = []
    families = [(socket.AF_INET, "127.0.0.1")]
    if socket.has_ipv6:
        families.append((socket.AF_INET6, "::1"))
    try:
        for family, host in families:
            listener = socket.socket(family, socket.SOCK_STREAM)
            try:
                listener.bind((host, 0))
            except OSError:  # no IPv6 loopback here
                listener.close()
                continue
            listener.listen()
            client = socket.create_connection(listener.getsockname()[:2])
            conn, _ = listener.accept()
            client.sendall(b"unread")
            held += [listener, client, conn]
        inodes = {os.fstat(s.fileno()).st_ino for s in held}

        def ours(table):
            return {inode: row for inode, row in table.items() if inode in inodes}

        assert _eventually(
            lambda: (
                ours(sockdiag._proc_table(os.getpid()))[os.fstat(held[2].fileno()).st_ino][4] == 6
            )
        )
        both = ours(sockdiag._dump_both())
        assert len(both) == len(held)
        assert both == ours(sockdiag._dump_by_family())
        assert both == sockdiag._dump_both(inodes) == sockdiag._dump_by_family(inodes)
        # No row of the kernel's own (TIME_WAIT, SYN_RECV: no descriptor holds them).
        assert not {r[0] for r in sockdiag._dump_both().values()} & {"TIME_WAIT", "SYN_RECV"}
        # /proc shows no bound for a listening socket's queue (netlink does): the rest agrees.
        from_proc = ours(sockdiag._proc_table(os.getpid()))
        assert {i: r[:3] + r[4:] for i, r in both.items()} == {
            i: r[:3] + r[4:] for i, r in from_proc.items()
        }
        assert all(both[i][3] == from_proc[i][3] for i in both if both[i][0] != "LISTEN")
        assert {row[0] for row in both.values()} == {"LISTEN", "ESTABLISHED"}
    finally:
        for s in held:
            s.close()


def test_tcp_table_addresses_ipv4_and_ipv6():
    text = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 0100007F:1F90 0100007F:D431 01 00000002:00000005 00:00000000 00000000  1000 "
        "       0 4242 1 0000000000000000 20 4 30 10 -1\n"
        "   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 "
        "0A 00000000:00000003 00:00000000 00000000  1000        0 4343 1\n"
    )
    table = procobs.parse_tcp_table(text)
    assert table[4242] == ("ESTABLISHED", ("127.0.0.1", 8080), ("127.0.0.1", 54321), 2, 5)
    assert table[4343][:3] == ("LISTEN", ("::1", 8080), ("::", 0))
    assert table[4343][4] == 3


def test_activity_tells_a_sleeping_process_from_a_busy_one():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:

        def settled(pid):
            first = procobs.activity([pid])
            import time

            time.sleep(0.05)
            second = procobs.activity([pid])
            return first.asleep and second.asleep and first.on_cpu == second.on_cpu

        assert _eventually(lambda: settled(sleeper.pid))
        assert not any(settled(spinner.pid) for _ in range(5))
    finally:
        for p in (sleeper, spinner):
            p.kill()
            p.wait()


def _eventually(predicate, timeout: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- the checks library, the general tracer and the general evidence -------------------------
# (tests of checklib/clientlib, boot.py's tracer, waits.py and checks/evidence.py)


def test_tracer_follows_every_selector_kind_and_select_poll_epoll(tmp_path):
    """Every selectors class, select.select, select.poll and select.epoll objects: each call
    with the student's line; the kinds boot.py wrote before keep their names."""
    events, out = run_boot(
        tmp_path,
        """\
        import select, selectors, socket
        a, b = socket.socketpair()
        for cls in (selectors.SelectSelector, selectors.PollSelector, selectors.EpollSelector,
                    selectors.DefaultSelector):
            sel = cls()
            sel.register(a, selectors.EVENT_READ)
            sel.modify(a, selectors.EVENT_WRITE)
            sel.select(0)
            sel.unregister(a)
            sel.close()
        select.select([a], [], [], 0)
        p = select.poll()
        p.register(a, select.POLLIN)
        p.modify(a, select.POLLOUT)
        p.poll(0)
        p.unregister(a)
        with select.epoll() as ep:
            ep.register(b.fileno(), select.EPOLLIN)
            ep.modify(b, select.EPOLLOUT)
            ep.poll(0.5)
            ep.unregister(b)
        ep2 = select.epoll()
        ep2.register(a, select.EPOLLIN)
        a.close()
        ep2.close()
        """,
    )
    assert "Traceback" not in out, out
    kinds = {}
    for e in events:
        kinds.setdefault(e["ev"], []).append(e)
    for kind in ("selector_new", "register", "modify", "select", "unregister", "selector_close"):
        assert {e["selector"] for e in kinds[kind] if "selector" in e} <= {
            "SelectSelector",
            "PollSelector",
            "EpollSelector",
        }, kind
    assert {e["selector"] for e in kinds["selector_new"]} == {
        "SelectSelector",
        "PollSelector",
        "EpollSelector",
    }
    assert len(kinds["register"]) == 4 and kinds["register"][0]["at"] == "server.py:6"
    assert kinds["select_call"] == [dict(kinds["select_call"][0], timeout=0, at="server.py:11")]
    assert [
        kinds[k][0]["at"]
        for k in ("poll_new", "poll_register", "poll_modify", "poll_wait", "poll_unregister")
    ] == [f"server.py:{n}" for n in (12, 13, 14, 15, 16)]
    assert [
        kinds[k][0]["at"]
        for k in (
            "epoll_new",
            "epoll_register",
            "epoll_modify",
            "epoll_wait",
            "epoll_unregister",
            "epoll_close",
        )
    ] == [f"server.py:{n}" for n in (17, 18, 19, 20, 21, 17)]
    assert kinds["epoll_wait"][0]["timeout"] == 0.5
    # a socket closed while registered with a raw epoll object is named, as with selectors
    assert kinds["close_registered"][0]["at"] == "server.py:24"
    assert kinds["close_registered"][0]["registered_at"] == "server.py:23"


def test_tracer_names_the_line_of_a_blocking_recv_once(tmp_path):
    events, _ = run_boot(
        tmp_path,
        """\
        import socket
        a, b = socket.socketpair()
        b.sendall(b"xyz")
        for _ in range(3):
            a.recv(1)
        b.setblocking(False)
        try:
            b.recv(1)
        except BlockingIOError:
            pass
        """,
    )
    calls = [e for e in events if e["ev"] == "blocking_call"]
    assert [(e["call"], e["at"]) for e in calls] == [("recv", "server.py:5")]


def test_tracer_hooks_stay_out_of_the_students_modules(tmp_path):
    """boot.py loads tracehooks.py by its path under a private name kept out of sys.modules:
    a module of the student's with the same name is the student's own."""
    events, out = run_boot(
        tmp_path,
        """\
        import selectors, socket, sys
        import tracehooks
        sel = selectors.DefaultSelector()
        a, b = socket.socketpair()
        sel.register(a, selectors.EVENT_READ)
        print(tracehooks.VALUE, sorted(n for n in sys.modules if "tracehooks" in n))
        """,
        extra={"tracehooks.py": "VALUE = 'mine'\n"},
    )
    assert "mine ['tracehooks']" in out, out
    assert [e["at"] for e in events if e["ev"] == "register"] == ["server.py:5"]


def test_a_traceback_through_a_hook_reads_as_the_students_own(tmp_path):
    from grader.harness.report import clean_traceback

    _, out = run_boot(tmp_path, "import socket\nsocket.socket().settimeout('x')\n")
    assert "tracehooks.py" in out  # the wrapper's frame, between the student's and the C call
    cleaned = clean_traceback(out, tmp_path / "sub")
    lines = cleaned.splitlines()
    assert lines[1:3] == [
        '  File "server.py", line 2, in <module>',
        "    socket.socket().settimeout('x')",
    ], cleaned
    assert len(lines) == 4 and lines[3].startswith("TypeError:"), cleaned


def test_a_launcher_without_its_hooks_still_runs_the_program(tmp_path):
    alone = tmp_path / "launcher"
    alone.mkdir()
    shutil.copyfile(BOOT, alone / "boot.py")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "server.py").write_text("print('ran')\n")
    trace = tmp_path / "trace.jsonl"
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-u", str(alone / "boot.py"), str(sub / "server.py")],
        env={"SG_TRACE": str(trace), "SG_ROOT": str(sub), "PATH": "/usr/bin:/bin"},
        cwd=sub,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 0 and proc.stdout == "ran\n", proc.stdout + proc.stderr
    kinds = [json.loads(line)["ev"] for line in trace.read_text().splitlines()]
    assert kinds == ["tracer_error", "start", "exit"]


def test_the_tracer_is_copied_whole_and_read_only_into_the_run_folder(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "sub").mkdir(parents=True)
    proc = StudentProcess(entry=run_dir / "sub" / "server.py", workdir=run_dir / "sub")
    proc.user = os.geteuid()
    for _ in range(2):  # a second start in the same run folder keeps the first copies
        assert proc._boot_copy() == run_dir / "boot.py"
    for source in TRACER_FILES:
        copy = run_dir / source.name
        assert copy.read_bytes() == source.read_bytes()
        assert copy.stat().st_mode & 0o777 == 0o444
    planted = tmp_path / "other"
    (planted / "sub").mkdir(parents=True)
    (planted / "tracehooks.py").symlink_to(TRACER_FILES[1])
    proc = StudentProcess(entry=planted / "sub" / "server.py", workdir=planted / "sub")
    proc.user = os.geteuid()
    with pytest.raises(OSError):
        proc._boot_copy()


def test_wait_mechanism_from_syscall_or_wchan():
    from grader.harness import waits

    cases = [
        ({"syscall": "select", "state": "S"}, "select"),
        ({"syscall": "pselect6", "state": "S"}, "select"),
        ({"syscall": "ppoll", "state": "S"}, "poll"),
        ({"syscall": "epoll_pwait2", "state": "S"}, "epoll"),
        ({"syscall": "recvfrom", "state": "S", "fd": 5}, None),
        ({"wchan": "do_epoll_wait", "state": "S"}, "epoll"),
        ({"wchan": "do_select", "state": "S"}, "select"),
        ({"wchan": "do_sys_poll", "state": "S"}, "poll"),
        ({"wchan": "do_select", "state": "R"}, None),
        ({"wchan": "poll_schedule_timeout.constprop.0", "state": "S"}, "select|poll"),
        ({"state": "R"}, None),
    ]
    for info, mechanism in cases:
        assert waits.wait_mechanism(0, info) == mechanism, info
    assert waits.matches("select|poll", ("select", "poll"))
    assert not waits.matches("select|poll", ("select",))
    assert not waits.matches("epoll", ("select", "poll")) and not waits.matches(None, ("poll",))
    for arch in ("x86_64", "aarch64"):
        names = set(waits.SYSCALLS[arch].values())
        assert {"pselect6", "ppoll", "epoll_pwait", "epoll_pwait2"} <= names, arch
    assert {"select", "poll", "epoll_wait"} <= set(waits.SYSCALLS["x86_64"].values())


def test_wait_mechanism_of_a_sleeping_process():
    """The kernel shows which of select, poll and epoll a process sleeps in."""
    programs = {
        "select": "import select, socket; a, b = socket.socketpair(); "
        "select.select([a], [], [], 30)",
        "poll": "import select, socket; a, b = socket.socketpair(); p = select.poll(); "
        "p.register(a, select.POLLIN); p.poll(30000)",
        "epoll": "import selectors, socket; a, b = socket.socketpair(); "
        "s = selectors.DefaultSelector(); s.register(a, selectors.EVENT_READ); "
        "s.select(30)",
    }
    procs = {m: subprocess.Popen([sys.executable, "-c", code]) for m, code in programs.items()}
    try:
        for mechanism, proc in procs.items():
            assert _eventually(lambda p=proc, m=mechanism: procobs.wait_mechanism(p.pid) == m), (
                mechanism,
                procobs.where(proc.pid),
            )
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def test_evidence_tells_busy_waits_by_their_units():
    from grader.harness.checks import evidence

    busy = [
        {"ev": "select", "timeout": 0, "selector": "EpollSelector"},
        {"ev": "select", "timeout": -1, "selector": "SelectSelector"},
        {"ev": "select_call", "timeout": 0},
        {"ev": "poll_wait", "timeout": 0},
        {"ev": "poll_wait", "timeout": 1},  # milliseconds: 0.001 s
        {"ev": "epoll_wait", "timeout": 0.0},
    ]
    idle = [
        {"ev": "select", "timeout": None},
        {"ev": "select", "timeout": 0.5},
        {"ev": "select_call", "timeout": None},
        {"ev": "poll_wait", "timeout": -1},
        {"ev": "poll_wait", "timeout": 100},
        {"ev": "epoll_wait", "timeout": -1},
        {"ev": "register", "timeout": 0},
        {"ev": "select", "timeout": True},
    ]
    assert all(evidence.is_busy(e) for e in busy)
    assert not any(evidence.is_busy(e) for e in idle)
    assert evidence.call_text(busy[0]) == "select(timeout=0)"
    assert evidence.call_text(busy[3]) == "poll(0)"
    assert evidence.mechanism_of(busy[0]) == "epoll"
    assert evidence.mechanism_of(busy[1]) == "select"
    trace = [
        {"ev": "selector_new", "selector": "EpollSelector", "at": "server.py:12"},
        {"ev": "register", "selector": "EpollSelector", "fd": 3, "at": "server.py:14"},
        {"ev": "select", "selector": "EpollSelector", "timeout": None, "at": "server.py:20"},
    ]
    made = evidence.created_at(trace, "epoll")
    assert made is not None and (str(made[0]), made[1]) == ("the EpollSelector", "server.py:12")
    assert evidence.wait_site(trace, "epoll") == "server.py:20"
    assert evidence.created_at(trace, "select") is None
    assert evidence.uses(trace) == ["EpollSelector"]


def test_checklib_and_clientlib_keep_their_public_names():
    # The modules' size is tests/test_architecture.py's (every module under grader/).
    from grader.harness import checklib, clientlib

    for lib in (checklib, clientlib):
        for name in lib.__all__:
            assert getattr(lib, name, None) is not None, (lib.__name__, name)
    assert callable(checklib.check_waits_in)


def test_stillness_counts_only_unbroken_sleep_without_cpu(monkeypatch):
    """Asleep with no CPU used, look after look, counts; running, a CPU spent between two
    looks, or a process gone starts the count again (a starved program is never 'still')."""
    clock = iter([10.0, 10.0, 13.5, 14.0, 14.0, 15.0, 16.0, 16.0])
    monkeypatch.setattr(procobs.time, "monotonic", lambda: next(clock))
    still = procobs.Stillness()
    assert still.look(procobs.Activity(True, 1.0)) == 0.0
    assert still.look(procobs.Activity(True, 1.0)) == 3.5
    assert still.look(procobs.Activity(True, 1.5)) == 0.0  # it ran between the looks
    assert still.look(procobs.Activity(True, 1.5)) == 1.0
    assert still.look(procobs.Activity(False, 1.5)) == 0.0  # running, or waiting for a CPU
    assert still.look(None) == 0.0  # gone


def test_a_warm_harness_waits_for_its_request_and_gives_up_in_time(tmp_path):
    """grader/harness/run.py --wait-request: the command line comes in a file, written whole
    by the host; none within the limit, and the harness ends (a host gone leaves nothing)."""
    import threading

    from grader.harness.run import wait_for_request

    path = tmp_path / "request.json"
    assert wait_for_request(path, limit=0.05) is None
    writer = threading.Timer(0.05, lambda: path.write_text(json.dumps({"argv": ["--x", "1"]})))
    writer.start()
    assert wait_for_request(path, limit=10) == ["--x", "1"]
    writer.join()
    path.write_text(json.dumps({"argv": "not a list"}))
    assert wait_for_request(path, limit=10) is None


def test_a_warm_harness_loads_what_the_checks_import_of_the_kit_and_no_more(tmp_path):
    """The warm harness's preload: the kit's modules named at the top of the checks file
    (an epoll grading has no use for the client checks, nor the client's for the servers'),
    and a checks file it cannot read or parse is left for the collection to report."""
    from grader.harness.run import kit_imports

    weird = tmp_path / "checks.py"
    weird.write_text(
        "import os\nimport grader.harness.clientlib as c\n"
        "from grader.harness.checklib import fail, settle\nfrom . import x\n"
        "def f():\n    import grader.harness.procobs\n"
    )
    assert kit_imports(str(weird)) == [
        "grader.harness.clientlib",
        "grader.harness.checklib.fail",
        "grader.harness.checklib.settle",
    ]
    (tmp_path / "broken.py").write_text("def (:\n")
    assert kit_imports(str(tmp_path / "broken.py")) == []
    assert kit_imports(str(tmp_path / "missing.py")) == []
    probe = (
        "import sys; from grader.harness.run import preload; preload(sys.argv[1]); "
        "print(*(m in sys.modules for m in ('grader.harness.checklib', "
        "'grader.harness.clientlib', 'grader.harness.plugin')))"
    )
    loaded = {}
    for name in ("epoll", "client", "broken"):
        checks = ROOT / "assignments" / name / "checks.py"
        if name == "broken":
            checks = tmp_path / "broken.py"
        done = subprocess.run(
            [sys.executable, "-P", "-c", probe, str(checks)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        loaded[name] = done.stdout.split()
    assert loaded["epoll"][0::2] == ["True", "True"] and loaded["epoll"][1] == "False"
    assert loaded["client"][1:] == ["True", "True"]
    assert loaded["broken"][2] == "True"


def test_the_harness_writes_its_report_in_one_go(tmp_path):
    """pytest-json-report's dump goes through json.dumps, the C encoder (run._OneShotJson):
    the very JSON json.dump wrote, what is not JSON through `default` as before."""
    from grader.harness.run import _OneShotJson

    report = {
        "tests": [{"nodeid": "a.py::test_b", "metadata": {"x": [1, 2.5, None, True, "é"]}}],
        "odd": Path("/x"),
    }
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    with one.open("w", encoding="utf-8") as f:
        _OneShotJson().dump(report, f, default=str, indent=None)
    with two.open("w", encoding="utf-8") as f:
        json.dump(report, f, default=str, indent=None)
    assert one.read_text(encoding="utf-8") == two.read_text(encoding="utf-8")
    assert "dump" in vars(_OneShotJson)  # its own, not json.dump through __getattr__
    assert _OneShotJson().dumps is json.dumps  # the rest of the module, as it is


def test_the_harness_loads_no_plugin_a_grading_does_not_use(tmp_path):
    """pytest-metadata (pytest-json-report's dependency) is never loaded: its platform line
    forks the harness to run `uname -p`, and nothing reads it."""
    from tests.test_lanes import _harness

    checks = """
    import sys

    def test_plugins(request):
        manager = request.config.pluginmanager
        assert not manager.has_plugin("metadata")
        assert "pytest_metadata.plugin" not in sys.modules
        assert manager.has_plugin("doctest") is False
        # and pytest-json-report writes through the harness's one-shot json
        assert type(sys.modules["pytest_jsonreport.plugin"].json).__name__ == "_OneShotJson"
    """
    report = _harness(tmp_path, checks, lanes=1)
    assert [t["outcome"] for t in report["tests"]] == ["passed"]
    assert "\n" not in (tmp_path / "report.json").read_text(encoding="utf-8")  # compact


def test_the_harness_says_when_its_checks_begin(tmp_path):
    """Beside its report, before its first check (the Docker sandbox starts no container
    ahead of need until then: grader/sandbox/docker/warm.py), with lanes or without."""
    from grader.contract import checks_begun
    from tests.test_lanes import _harness

    for lanes in (1, 3):
        folder = tmp_path / str(lanes)
        folder.mkdir()
        begun = checks_begun(folder / "report.json")
        checks = f"""
        from pathlib import Path

        def test_first():
            assert Path({str(begun)!r}).exists()

        def test_second():
            assert Path({str(begun)!r}).exists()

        def test_third():
            pass
        """
        report = _harness(folder, checks, lanes=lanes)
        assert [t["outcome"] for t in report["tests"]] == ["passed"] * 3


def test_a_window_is_certain_idle_only_while_the_server_is_seen_asleep():
    """schedstat counts a wait for a CPU only once the thread gets one: a busy loop kept off
    the CPU for a whole short window reads as neither running nor waiting. Such a window is
    never settled as idle while the program shows 'R' (checks/cpu.py)."""
    from types import SimpleNamespace

    from grader.harness.checks.cpu import certain
    from grader.harness.procobs import Activity, CpuWindow
    from grader.harness.timing import SETTLE_AWAKE

    nothing = CpuWindow(SETTLE_AWAKE * 1.5, 0.0, running=0.0, waiting=0.0)
    spinning = CpuWindow(SETTLE_AWAKE * 1.5, 0.1, running=0.1, waiting=0.0)
    kept_off = SimpleNamespace(activity=lambda: Activity(asleep=False, on_cpu=1.0))
    asleep = SimpleNamespace(activity=lambda: Activity(asleep=True, on_cpu=1.0))
    assert not certain(nothing, kept_off)  # runnable: the window goes on
    assert certain(nothing, asleep)
    assert certain(spinning, kept_off)  # busy: certain whatever it shows now
    early = CpuWindow(SETTLE_AWAKE / 2, 0.0, running=0.0, waiting=0.0)
    assert not certain(early, asleep)


def test_listeners_alone_are_what_a_snapshot_lists():
    """The start's cheap look (the kernel's listeners alone) finds what a whole snapshot
    finds: the listening socket, not the connections."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    conn, _ = listener.accept()
    try:
        found = procobs.listeners(os.getpid())
        assert found == procobs.snapshot(os.getpid()).listeners()
        assert [c.fd for c in found] == [listener.fileno()]
        assert found[0].local == listener.getsockname()
    finally:
        for s in (conn, client, listener):
            s.close()
    assert procobs.listeners(os.getpid()) == []


def test_waits_look_soon_then_every_poll():
    from itertools import islice

    from grader.harness.timing import FIRST_POLL, POLL, pauses

    assert list(islice(pauses(), 7)) == [
        FIRST_POLL,
        2 * FIRST_POLL,
        4 * FIRST_POLL,
        8 * FIRST_POLL,
        POLL,
        POLL,
        POLL,
    ]
    assert list(islice(pauses(0.001), 3)) == [0.001] * 3


def test_a_netlink_way_that_answers_empty_is_not_trusted(monkeypatch):
    """A kernel that only pretends to answer (an empty table, as an emulating runtime may
    give) is found out on a socket of the harness's own before any verdict rests on it: the
    next way is asked, and /proc when no way is left."""
    from grader.harness import sockdiag

    def empty(wanted=None, states=sockdiag.OWNED_STATES):
        return {}

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    inode = os.fstat(listener.fileno()).st_ino
    try:
        for ways, left in (([empty, sockdiag._dump_both], 1), ([empty], 0)):
            monkeypatch.setattr(sockdiag, "_netlink_ways", list(ways))
            monkeypatch.setattr(sockdiag, "_ways_checked", False)
            found = sockdiag.tcp_table(os.getpid(), {inode}, sockdiag.LISTEN_STATES)
            assert found[inode][0] == "LISTEN"
            assert len(sockdiag._netlink_ways) == left and empty not in sockdiag._netlink_ways
    finally:
        listener.close()


def _connections(family: int, host: str, count: int) -> list[socket.socket]:
    """[listener, client, accepted, client, accepted, ...]: `count` connections, the first
    with bytes its server has not read."""
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen()
    held = [listener]
    for i in range(count):
        client = socket.create_connection(listener.getsockname()[:2])
        conn, _ = listener.accept()
        if i == 0:
            client.sendall(b"unread")
        held += [client, conn]
    return held


def test_the_kits_own_connections_are_looked_up_without_walking_the_table(monkeypatch):
    """sockdiag: a program's listening socket comes from the table of listeners, and the
    connections of the kit's clients (remembered as they connect) from exact requests: the
    same rows as a walk of the whole table, without one. A connection the kit did not make,
    or one of a check before (forgotten), is found by the walk, as before."""
    from grader.harness import sockdiag

    asked: list[int] = []  # the states of each dump

    def spy(wanted=None, states=sockdiag.OWNED_STATES):
        asked.append(states)
        return sockdiag._dump_both(wanted, states)

    assert sockdiag._exact_finds_a_connection(), "this kernel answers exact requests"
    monkeypatch.setattr(sockdiag, "_netlink_ways", [spy])
    monkeypatch.setattr(sockdiag, "_ways_checked", True)
    monkeypatch.setattr(sockdiag, "_exact_checked", True)
    monkeypatch.setattr(sockdiag, "_exact_trusted", True)
    monkeypatch.setattr(sockdiag, "_known", [])
    groups = [_connections(socket.AF_INET, "127.0.0.1", 3)]
    if socket.has_ipv6:
        try:
            groups.append(_connections(socket.AF_INET6, "::1", 1))
        except OSError:  # no IPv6 loopback here
            pass

    def inode(sock: socket.socket) -> int:
        return os.fstat(sock.fileno()).st_ino

    try:
        servers_side, unknown = [], None
        for held in groups:
            servers_side.append(held[0])
            for client, accepted in zip(held[1::2], held[2::2], strict=True):
                if unknown is None and len(held) > 5 and client is held[5]:
                    unknown = accepted  # the kit did not make this one (as it sees)
                    continue
                sockdiag.remember(client)
                servers_side.append(accepted)
        assert unknown is not None
        inodes = {inode(s) for s in servers_side}
        first = groups[0][2]
        assert _eventually(lambda: sockdiag._dump_both({inode(first)})[inode(first)][4] == 6)
        walked = sockdiag._dump_both(inodes)
        assert len(walked) == len(inodes)
        asked.clear()
        assert sockdiag.tcp_table(os.getpid(), inodes) == walked
        assert sockdiag.OWNED_STATES not in asked, "no walk of the whole table"
        assert {row[0] for row in walked.values()} == {"LISTEN", "ESTABLISHED"}
        assert walked[inode(first)][4] == 6  # the unread bytes, seen alike
        with_unknown = inodes | {inode(unknown)}
        asked.clear()
        assert sockdiag.tcp_table(os.getpid(), with_unknown) == sockdiag._dump_both(with_unknown)
        assert sockdiag.OWNED_STATES in asked, "the connection it did not make: a walk"
        sockdiag.forget()
        asked.clear()
        assert sockdiag.tcp_table(os.getpid(), inodes) == walked
        assert sockdiag.OWNED_STATES in asked, "forgotten: a walk again"
    finally:
        for held in groups:
            for s in held:
                s.close()


def test_exact_requests_a_kernel_does_not_carry_out_are_not_trusted(monkeypatch):
    """An emulating runtime may answer an exact request with nothing (or not at all): tried
    once on a connection of the harness's own, it is then never asked, and a walk is."""
    from grader.harness import sockdiag

    held = _connections(socket.AF_INET, "127.0.0.1", 1)
    try:
        for pretend in (
            lambda wanted: {},
            lambda wanted: (_ for _ in ()).throw(sockdiag.Unavailable("no")),
        ):
            monkeypatch.setattr(sockdiag, "_exact", pretend)
            monkeypatch.setattr(sockdiag, "_exact_checked", False)
            monkeypatch.setattr(sockdiag, "_known", [])
            sockdiag.check_ways()
            assert sockdiag._exact_checked and not sockdiag._exact_trusted
            sockdiag.remember(held[1])
            inodes = {os.fstat(held[0].fileno()).st_ino, os.fstat(held[2].fileno()).st_ino}
            rows = sockdiag.tcp_table(os.getpid(), inodes)
            assert {row[0] for row in rows.values()} == {"LISTEN", "ESTABLISHED"}
    finally:
        for s in held:
            s.close()


def test_a_wait_keeps_the_spacing_its_caller_asks_for():
    """Looks that must span a moment (selector's consecutive looks, POLL apart) stay that far
    apart; a plain wait looks soon at first."""
    import time
    from itertools import pairwise
    from types import SimpleNamespace

    from grader.harness.server import POLL, Server

    server = Server.__new__(Server)
    server.proc = SimpleNamespace(alive=lambda: True)

    def looks(**kwargs) -> list[float]:
        seen: list[float] = []
        server.wait_until(lambda: seen.append(time.monotonic()) or len(seen) == 4, 5, **kwargs)
        return [b - a for a, b in pairwise(seen)]

    assert all(gap >= POLL for gap in looks(interval=POLL))
    assert looks()[0] < POLL / 2
