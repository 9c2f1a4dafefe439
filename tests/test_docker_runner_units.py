"""The Docker runner's decisions after a container ends (grader/sandbox/docker/runner.py), with
a stand-in engine: why there is no report is asked of the engine only when there is none.
(A real harness starved of memory may thrash for minutes before the kernel kills it: the
engine's side of that sentence is what is proved here.)"""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path
from types import SimpleNamespace

from grader.assignment import load_assignment
from grader.models import RunRequest, Submission
from grader.sandbox.docker.container import DEFAULT_LIMITS, OUT_IN
from grader.sandbox.docker.runner import DockerSandbox


class _Container:
    """Ends at once: with a report written in its output folder, or none and killed (137)."""

    def __init__(self, kwargs: dict, report: dict | None, oom: bool) -> None:
        self.out = Path(next(m["Source"] for m in kwargs["mounts"] if m["Target"] == OUT_IN))
        self.report, self.oom = report, oom
        self.reloads = 0
        self.attrs: dict = {}

    def start(self) -> None:
        if self.report is not None:
            (self.out / "report.json").write_text(json.dumps(self.report), encoding="utf-8")

    def wait(self, timeout=None) -> dict:
        return {"StatusCode": 0 if self.report is not None else 137}

    def logs(self, **kwargs) -> bytes:
        return b""

    def reload(self) -> None:
        self.reloads += 1
        self.attrs = {"State": {"OOMKilled": self.oom}}


def _run(tmp_path: Path, report: dict | None, oom: bool):
    made: list[_Container] = []

    def create(**kwargs):
        made.append(_Container(kwargs, report, oom))
        return made[-1]

    box = object.__new__(DockerSandbox)  # no engine: only what _run uses
    box.__dict__.update(
        wall_clock=60.0,
        scratch=tmp_path / "scratch",
        image="socketgrade-sandbox:test",
        limits=DEFAULT_LIMITS,
        engine="stand-in",
        engine_faults_raise=False,
        image_id="",
        image_digest="",
        owner="host:1",
        _running=set(),
        _stopped=set(),
        _lock=threading.Lock(),
        _seq=itertools.count(1),
        copy_files=False,
        warm=None,
        client=SimpleNamespace(
            containers=SimpleNamespace(create=create),
            api=SimpleNamespace(remove_container=lambda *a, **k: None),
        ),
    )
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "server.py").write_text("pass\n", encoding="utf-8")
    sub = Submission(id="sub", source=folder, folder=folder, entry="server.py")
    outcome = box.run(RunRequest(sub, load_assignment("epoll"), (), 60.0))
    return outcome, made[0]


def test_no_report_and_out_of_memory_names_the_limit(tmp_path):
    outcome, container = _run(tmp_path, None, oom=True)
    assert outcome.report is None and outcome.error_fault == "submission"
    assert f"ran out of memory ({DEFAULT_LIMITS.memory_mib} MiB)" in str(outcome.error)
    assert container.reloads == 1


def test_no_report_otherwise_is_the_kits_fault(tmp_path):
    outcome, container = _run(tmp_path, None, oom=False)
    assert outcome.report is None and outcome.error_fault == "infrastructure"
    assert "ran out of memory" not in str(outcome.error)
    assert container.reloads == 1


def test_a_report_is_read_without_asking_the_engine_why(tmp_path):
    outcome, container = _run(tmp_path, {"tests": []}, oom=False)
    assert outcome.report == {"tests": []} and not str(outcome.error)
    assert container.reloads == 0
