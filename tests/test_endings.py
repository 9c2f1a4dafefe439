"""How a run of the student's program ended, told truly: by itself (its exit code), stopped by
the grader once its check was over, killed by the kit (and why), or killed by a signal (and
which bound that signal means); and no empty traceback box."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from grader.harness.launch import StudentProcess
from grader.harness.report import process_report
from grader.models import ProgramRun
from grader.score import describe_exit, program_run

DEADLINE = 20.0  # far above the time a tiny program takes to start or exit, even when loaded


def _run(tmp_path: Path, source: str, *, stop_when_printed: bool) -> StudentProcess:
    work = tmp_path / "sub"
    work.mkdir()
    (work / "prog.py").write_text(source)
    proc = StudentProcess(entry=work / "prog.py", workdir=work)
    proc.start()
    deadline = time.monotonic() + DEADLINE
    try:
        if stop_when_printed:
            while proc.stdout is not None and proc.stdout.total == 0:
                assert time.monotonic() < deadline, "the program never printed"
                time.sleep(0.01)
        else:
            while proc.alive():
                assert time.monotonic() < deadline, "the program never ended"
                time.sleep(0.01)
    finally:
        proc.kill()
    return proc


def test_a_server_still_running_is_stopped_by_the_grader_not_killed(tmp_path):
    proc = _run(
        tmp_path, "import time\nprint('up', flush=True)\ntime.sleep(60)\n", stop_when_printed=True
    )
    report = process_report(proc)
    assert report.exit_code == -signal.SIGKILL and report.ended_by == "grader"
    assert str(program_run(report).exit).startswith("stopped by the grader after its check")


def test_a_program_that_exits_by_itself_says_its_code(tmp_path):
    proc = _run(tmp_path, "raise SystemExit(3)\n", stop_when_printed=False)
    report = process_report(proc)
    assert report.ended_by == ""
    assert str(program_run(report).exit) == "exited with code 3"


def test_a_crash_shows_its_traceback_and_code(tmp_path):
    proc = _run(tmp_path, "def f():\n    raise ValueError('boom')\nf()\n", stop_when_printed=False)
    run = program_run(process_report(proc))
    assert str(run.exit) == "exited with code 1"
    assert run.traceback and "ValueError: boom" in run.stderr


def test_every_ending_reads_differently():
    assert str(describe_exit(0)) == "exited with code 0"
    assert str(describe_exit(None)) == "still running when the check ended"
    assert str(describe_exit(-signal.SIGKILL, "grader")).startswith("stopped by the grader")
    assert str(describe_exit(-signal.SIGKILL, "memory: 600 MiB resident, limit 512 MiB")) == (
        "killed by the kit (memory: 600 MiB resident, limit 512 MiB)"
    )
    assert str(describe_exit(-signal.SIGXFSZ)) == "killed by signal SIGXFSZ (the file-size limit)"
    assert str(describe_exit(-signal.SIGXCPU)) == "killed by signal SIGXCPU (the CPU-time limit)"
    assert str(describe_exit(-signal.SIGKILL)).startswith("killed by signal SIGKILL (")
    assert str(describe_exit(-signal.SIGTERM)) == "killed by signal SIGTERM"
    assert "normally" not in str(describe_exit(0))


def test_a_lone_traceback_header_is_not_a_traceback():
    assert not ProgramRun(stderr="Traceback (most recent call last):\n").traceback
    assert not ProgramRun(stderr="oops\n").traceback
    assert ProgramRun(
        stderr='Traceback (most recent call last):\n  File "server.py", line 3\nOSError: x\n'
    ).traceback


def test_a_run_needs_no_thread_once_it_runs(tmp_path, monkeypatch):
    """A fork bomb takes every process the container allows as soon as it runs, and a thread
    is one: the threads that read a run's output and watch its memory are started before it,
    and its output is still read whole."""
    import subprocess
    import threading

    from grader.harness import launch

    started: list = []
    real_popen, real_start = subprocess.Popen, threading.Thread.start

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    def start(thread):
        if started:
            raise RuntimeError("can't start new thread")
        return real_start(thread)

    monkeypatch.setattr(launch.subprocess, "Popen", popen)
    monkeypatch.setattr(threading.Thread, "start", start)
    proc = _run(tmp_path, "print('up', flush=True)\n", stop_when_printed=False)
    monkeypatch.undo()
    assert started, "the run was not started through Popen"
    assert proc.stdout is not None and proc.stdout.text() == "up\n"
    assert proc.watchdog is not None  # started before the run, and stopped with it
