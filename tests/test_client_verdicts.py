"""Every check of the client assignment proved both ways: the reference passes it, a client
with exactly that bug fails it (and only what the expected table says). Graded as a TA would,
in one batch, with the local sandbox."""

from __future__ import annotations

import selectors
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import psutil
import pytest

from grader.assignment import load_assignment
from grader.harness.clientlib import KitServer
from tests.conftest import build_batch
from tests.verdicts import assert_verdicts, load_results

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "assignments" / "client" / "fixtures"
EXPECTED = tomllib.loads((FIXTURES / "expected.toml").read_text(encoding="utf-8"))
CLIENT = load_assignment("client")
ALL_CHECKS = {c.id for c in CLIENT.checks}


@pytest.fixture(scope="module")
def client_batch(graded_local):
    """Every client fixture and the reference, graded once, three at a time."""
    return graded_local("client")


def test_a_full_accept_queue_makes_the_handshake_wait_for_the_syn_resend():
    """The mechanism connect_wait stands on, and the course's warning with it: the kernel
    drops a SYN while the accept queue is full, a send() before the connection is up raises
    BlockingIOError, and the connection comes up when the client's kernel resends its SYN,
    1 s after the first (3 s if the kit made room too late for that one)."""
    srv = KitServer(b"x", backlog=0)
    client = socket.socket()
    try:
        srv.fill_queue()
        client.setblocking(False)
        start = time.monotonic()
        with pytest.raises(BlockingIOError):
            client.connect(("127.0.0.1", srv.port))
        with pytest.raises(BlockingIOError):
            client.send(b"too early")
        time.sleep(0.3)
        srv.open_queue()
        with selectors.DefaultSelector() as sel:
            sel.register(client, selectors.EVENT_WRITE)
            assert sel.select(10)
        elapsed = time.monotonic() - start
        assert client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        assert 0.9 < elapsed < 4.0
    finally:
        client.close()
        srv.close()


def _until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_split_reply_goes_out_only_as_fast_as_the_client_reads():
    """What makes `echo` the same on every machine: however late a client calls recv(),
    one recv() gets exactly the first piece; the next piece goes out only once the kernel
    shows the first one read. (With pieces a fixed time apart, a client that came late
    found them joined, and a client that reads once passed on a slow machine.)"""
    srv = KitServer(b"0123456789", pieces=3)
    srv.start()
    client = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        client.sendall(b"0123456789")
        assert _until(lambda: srv.conversations and srv.conversations[0].sent == 3)
        conv = srv.conversations[0]
        # An observation window far longer than the pieces' gap: nothing more may go out
        # while the first piece lies unread.
        assert not _until(lambda: conv.sent > 3, timeout=0.8)
        assert client.recv(100) == b"012"
        reply = b"012"
        while len(reply) < 10:
            reply += client.recv(100)
        assert reply == b"0123456789"
        assert _until(lambda: conv.replied) and conv.read == 6
    finally:
        client.close()
        srv.close()


def test_a_half_close_is_not_leaving():
    """shutdown(SHUT_WR) after the message ends the client's sending, not its reading: the
    kit still sends every piece."""
    srv = KitServer(b"half", pieces=2)
    srv.start()
    client = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        client.sendall(b"half")
        client.shutdown(socket.SHUT_WR)
        reply = b""
        while len(reply) < 4:
            chunk = client.recv(100)
            assert chunk, reply
            reply += chunk
        assert reply == b"half"
        conv = srv.conversations[0]
        assert _until(lambda: conv.replied) and not conv.closed_early
    finally:
        client.close()
        srv.close()


def test_leaving_with_the_reply_unread_is_seen():
    """A client that closes with a piece unread: its kernel resets the connection, and the
    kit stops there and says so."""
    srv = KitServer(b"0123456789", pieces=2)
    srv.start()
    client = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        client.sendall(b"0123456789")
        assert _until(lambda: srv.conversations and srv.conversations[0].sent == 5)
    finally:
        client.close()
    conv = srv.conversations[0]
    try:
        assert _until(conv.reply_over.is_set)
        assert conv.closed_early and conv.unread and conv.read == 0 and not conv.replied
    finally:
        srv.close()


def test_settled_only_once_what_the_client_left_is_taken_in():
    """A client that sends and exits at once leaves its connection in the kit's accept
    queue; the kit judges only after it has accepted it and read the message."""
    srv = KitServer(b"quick", pieces=1)
    client = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    client.sendall(b"quick")
    client.close()
    try:
        assert _until(lambda: srv._queued() == 1)
        assert not srv.settled()  # still queued: not accepted yet
        srv.start()
        assert _until(srv.settled)
        assert srv.conversation() is not None and srv.conversation().complete
    finally:
        srv.close()


def test_batch_exit_code_is_zero_whatever_the_scores(client_batch):
    code, out = client_batch
    assert code == 0
    assert (out / "index.html").is_file()
    assert not (out / ".work").exists(), "scratch files were left behind"


def test_every_check_is_proved_both_ways():
    """The table itself: each check fails somewhere alone, and the reference passes all."""
    assert EXPECTED["reference"]["fails"] == []
    alone = {
        e["fails"][0] for e in EXPECTED.values() if e["fails"] != "all" and len(e["fails"]) == 1
    }
    assert alone == ALL_CHECKS - {"runs"}
    assert any(e["fails"] == "all" and "runs" in e.get("why", {}) for e in EXPECTED.values())


def test_the_slow_handshake_really_was_slow(client_batch):
    """connect_wait is only a test of waiting if the connection took a while: the kernel
    resends a dropped SYN 1 s after the first (then 3 s, 7 s). Measured from when the kit saw
    the client's SYN_SENT socket: about 1 s; 3 s if a loaded machine made the kit make room
    after the first resend. (That the full queue held the connection back at all is checked
    by connect_wait itself: it stops as the grader's fault otherwise.)"""
    _, out = client_batch
    for ident in ("reference", "retry_loops", "blocking"):
        test = next(t for t in load_results(out, ident)["tests"] if t["number"] == "connect_wait")
        seconds = test["extra_data"]["measurements"]["handshake_seconds"]
        assert 0.5 < seconds < 8.0, (ident, seconds)


def test_graded_in_bounded_time(client_batch):
    _, out = client_batch
    for ident in EXPECTED:
        assert load_results(out, ident)["execution_time"] < 30, ident


def test_nothing_of_the_submissions_survives(client_batch):
    _, out = client_batch
    leftovers = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if str(out) in cmd:
            leftovers.append(cmd)
    assert leftovers == []


def test_report_explains_in_terms_of_the_students_code(client_batch):
    _, out = client_batch
    html = (out / "sends_at_once" / "report.html").read_text(encoding="utf-8")
    assert "client.py:14" in html and "client.send(message)" in html


@pytest.fixture(scope="module")
def starved_docker_batch(tmp_path_factory, docker_engine):
    """The client class graded in Docker with each container given a quarter of a core,
    while two busy loops run beside the grader the whole time."""
    from grader.cli import main
    from grader.sandbox import docker as sandbox_docker

    base = tmp_path_factory.mktemp("client-starved")
    batch = build_batch("client", base / "class")
    out = base / "out"
    init = sandbox_docker.DockerSandbox.__init__

    def starved(self, *args, **kwargs):
        kwargs["limits"] = sandbox_docker.DockerLimits(cpus=0.25)
        init(self, *args, **kwargs)

    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sandbox_docker.DockerSandbox, "__init__", starved)
            code = main(
                [
                    str(batch),
                    "--assignment",
                    "client",
                    "--out",
                    str(out),
                    "--sandbox",
                    "docker",
                    "--jobs",
                    "2",
                ]
            )
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    return code, out


@pytest.mark.docker
@pytest.mark.parametrize("ident", sorted(EXPECTED))
def test_same_verdicts_starved_and_loaded(starved_docker_batch, ident):
    """Timing decides no verdict: the same table holds with the sandbox starved of CPU."""
    code, out = starved_docker_batch
    assert code == 0
    assert_verdicts(load_results(out, ident), EXPECTED[ident], ALL_CHECKS)
