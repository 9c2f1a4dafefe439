"""The command line as TAs and students use it: exit codes, one-sentence errors, self-check."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.cli import main
from tests.conftest import reference_file

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "assignments" / "epoll" / "fixtures"


@pytest.fixture(autouse=True)
def english(monkeypatch):
    """These tests read the English sentences: the locale asks for English (the default
    language follows it; tests/test_lang.py covers the others)."""
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "en_US.UTF-8")


def test_unknown_assignment_is_one_sentence(tmp_path, capsys):
    assert main([str(tmp_path), "--assignment", "epol", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown assignment 'epol': choose one of" in err and "epoll" in err
    assert "Traceback" not in err


def test_missing_submissions_folder(tmp_path, capsys):
    assert (
        main(
            [
                str(tmp_path / "nope"),
                "-a",
                "epoll",
                "--out",
                str(tmp_path / "o"),
                "--sandbox",
                "local",
            ]
        )
        == 2
    )
    assert f"the submissions folder '{tmp_path / 'nope'}' does not exist" in capsys.readouterr().err


def test_bad_jobs(tmp_path, capsys):
    assert main([str(tmp_path), "-a", "epoll", "--jobs", "0"]) == 2
    assert "--jobs must be at least 1, not 0" in capsys.readouterr().err


def test_self_check_passes_on_the_reference(tmp_path, capsys):
    sub = tmp_path / "server.py"
    shutil.copyfile(reference_file("epoll"), sub)
    out = tmp_path / "report"
    assert main(["check", str(sub), "--assignment", "epoll", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "all visible checks pass" in err
    results = json.loads((out / "server" / "results.json").read_text())
    ids = {t["number"] for t in results["tests"]}
    assert "robustness" not in ids, "a hidden check ran in the self-check"
    assert ids == {
        "runs",
        "echo",
        "disconnect",
        "concurrency",
        "unregister",
        "idle_cpu",
        "single_thread",
        "uses_epoll",
        "cleanup",
    }
    assert "self-check" in (out / "server" / "report.html").read_text().lower()


def test_self_check_explains_failures_and_exits_non_zero(tmp_path):
    # Through the installed console script, as a student runs it.
    out = tmp_path / "report"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.cli",
            "check",
            str(FIX / "busy_poll" / "server.py"),
            "--assignment",
            "epoll",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "FAIL idle_cpu" in proc.stderr
    assert "select(timeout=0)" in proc.stderr
    assert "hint:" in proc.stderr
    assert (out / "server" / "report.html").is_file()


def test_a_grader_fault_on_one_submission_does_not_stop_the_batch(tmp_path, monkeypatch, capsys):
    """If the kit itself fails on one submission, the others are still graded, that one is
    marked as not the student's fault, and the exit code says not everything was graded."""
    from grader import sandbox as sandbox_module

    cls = tmp_path / "class"
    for name in ("alice", "bob"):
        (cls / name).mkdir(parents=True)
        shutil.copyfile(reference_file("epoll"), cls / name / "server.py")
    real_run = sandbox_module.LocalSandbox.run

    def flaky_run(self, req):
        if req.submission.id == "bob":
            raise RuntimeError("disk on fire")
        return real_run(self, req)

    monkeypatch.setattr(sandbox_module.LocalSandbox, "run", flaky_run)
    out = tmp_path / "out"
    code = main([str(cls), "-a", "epoll", "-o", str(out), "--sandbox", "local", "--jobs", "2"])
    assert code == 1
    assert "could not be graded because of the grader or the sandbox" in capsys.readouterr().err
    alice = json.loads((out / "alice" / "results.json").read_text())
    bob = json.loads((out / "bob" / "results.json").read_text())
    assert alice["score"] == 100
    assert bob["score"] == 0
    assert all(
        "disk on fire" in t["output"] and t["extra_data"]["fault"] == "infrastructure"
        for t in bob["tests"]
    )


def _lab(tmp_path, name="lab3") -> Path:
    """A student's folder holding a correct server.py."""
    lab = tmp_path / name
    lab.mkdir()
    shutil.copyfile(reference_file("epoll"), lab / "server.py")
    return lab


def test_self_check_of_the_current_folder_with_or_without_dot(tmp_path, monkeypatch, capsys):
    """`grade check` and `grade check .` check the folder they run in, named after it, with
    the report in ./socketgrade-report (left out of what is checked, also the second time)."""
    lab = _lab(tmp_path)
    monkeypatch.chdir(lab)
    assert main(["check", "-a", "epoll"]) == 0, capsys.readouterr().err
    assert main(["check", ".", "-a", "epoll"]) == 0, capsys.readouterr().err
    results = json.loads((lab / "socketgrade-report" / "lab3" / "results.json").read_text())
    assert results["score"] == 90 and results["extra_data"]["submission"] == "lab3"
    html = (lab / "socketgrade-report" / "lab3" / "report.html").read_text()
    assert "<code>server.py</code>" in html and "socketgrade-report/" not in html
    assert sorted(p.name for p in (lab / "socketgrade-report").iterdir()) == ["lab3"]


def test_self_check_of_a_relative_folder_into_a_relative_out(tmp_path, monkeypatch, capsys):
    _lab(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "lab3/", "-a", "epoll", "--out", "reports/"]) == 0, (
        capsys.readouterr().err
    )
    assert json.loads((tmp_path / "reports" / "lab3" / "results.json").read_text())["score"] == 90
    assert not (tmp_path / "socketgrade-report").exists()


def test_local_batch_with_a_relative_out_inside_the_class(tmp_path, monkeypatch, capsys):
    """`grade class --out class/out`: every path relative, the output folder among the
    students' folders and never graded as one of them."""
    cls = tmp_path / "class"
    cls.mkdir()
    _lab(cls, "alice")
    monkeypatch.chdir(tmp_path)
    assert main(["class", "-a", "epoll", "--out", "class/out", "--sandbox", "local"]) == 0, (
        capsys.readouterr().err
    )
    assert json.loads((cls / "out" / "alice" / "results.json").read_text())["score"] == 100
    assert "alice" in (cls / "out" / "grades.csv").read_text()
    assert not (cls / "out" / "out").exists()


def test_an_output_folder_that_is_the_class_folder_is_refused(tmp_path, monkeypatch, capsys):
    _lab(tmp_path, "alice")
    monkeypatch.chdir(tmp_path)
    assert main([".", "-a", "epoll", "--out", "./", "--sandbox", "local"]) == 2
    assert capsys.readouterr().err == (
        "grade: the output folder './' is the submissions folder itself: choose another --out\n"
    )
    assert not (tmp_path / ".work").exists()


def test_a_missing_relative_path_is_quoted_as_typed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "lab4/", "-a", "epoll", "--out", "r"]) == 2
    assert capsys.readouterr().err == "grade: 'lab4/' does not exist\n"


@pytest.mark.parametrize("platform, name", [("darwin", "macOS"), ("win32", "Windows")])
def test_local_sandbox_off_linux_says_use_docker(tmp_path, monkeypatch, capsys, platform, name):
    lab = _lab(tmp_path)
    monkeypatch.chdir(lab)
    monkeypatch.setattr(sys, "platform", platform)
    assert main(["check", "server.py", "-a", "epoll"]) == 2
    assert capsys.readouterr().err == (
        f"grade: the local sandbox needs Linux (it reads /proc and the servers use epoll) and "
        f"this is {name}: run `grade check server.py -a epoll --sandbox docker` (with Docker "
        f"Desktop running) instead\n"
    )
    assert main([".", "-a", "epoll", "--sandbox", "local", "--out", "o"]) == 2
    assert "run `grade . -a epoll --sandbox docker`" in capsys.readouterr().err
    assert not (lab / "socketgrade-report").exists() and not (lab / "o").exists()


@pytest.mark.docker
def test_self_check_in_docker_on_macos(tmp_path, monkeypatch, capsys, docker_engine):
    """On a Mac the student checks with `--sandbox docker`; nothing on the host side of that
    path needs Linux."""
    lab = _lab(tmp_path)
    monkeypatch.chdir(lab)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert main(["check", "--sandbox", "docker", "-a", "epoll"]) == 0, capsys.readouterr().err
    results = json.loads((lab / "socketgrade-report" / "lab3" / "results.json").read_text())
    assert results["score"] == 90 and results["extra_data"]["sandbox"] == "docker"


def test_checks_that_could_not_judge_carry_no_hint(tmp_path, capsys):
    """A server that never listens: `runs` says why, with its hint; every other check says
    once that it was not judged, without a hint that would send the student fixing what
    may well work."""
    out = tmp_path / "report"
    code = main(
        ["check", str(FIX / "exits_at_once" / "server.py"), "-a", "epoll", "--out", str(out)]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("hint:") == 1 and "why:  not judged: see runs" in err
    results = json.loads((out / "server" / "results.json").read_text())
    outputs = {t["number"]: t["output"] for t in results["tests"]}
    assert "Hint:" in outputs["runs"]
    assert outputs["echo"] == "not judged: see runs"
