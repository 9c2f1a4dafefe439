"""Hostile submissions graded in Docker in one batch with good ones: each is contained and
scored as it deserves, the batch finishes in bounded time, nothing of them survives, nothing
is written on the host outside OUT, and the reports escape what they printed."""

from __future__ import annotations

import os
import shutil
import socket
import time
import zipfile
from pathlib import Path

import pytest

from grader.assignment import load_assignment
from tests.conftest import HOSTILE, ROOT
from tests.verdicts import assert_verdicts, load_results

pytestmark = pytest.mark.docker
FORGED = Path("/tmp/socketgrade-forged")
BATCH_BOUND = 600  # seconds for the whole batch, two at a time: far above the ~2 min it takes


def expected() -> dict:
    import tomllib

    return tomllib.loads((HOSTILE / "expected.toml").read_text(encoding="utf-8"))


def build(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for child in HOSTILE.iterdir():
        if child.is_dir():
            shutil.copytree(child, dest / child.name)
    (dest / "reference").mkdir()
    shutil.copyfile(ROOT / "reference" / "epoll_server.py", dest / "reference" / "server.py")
    shutil.copytree(
        ROOT / "assignments" / "epoll" / "examples" / "course_listing", dest / "course_listing"
    )
    with zipfile.ZipFile(dest / "zip_slip.zip", "w") as zf:
        zf.writestr("server.py", "print('hi')\n")
        zf.writestr("../../../../tmp/socketgrade-zip-slip.py", "owned\n")
    with zipfile.ZipFile(dest / "zip_bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("bomb.bin", "w", force_zip64=True) as fh:
            block = b"\0" * (1 << 20)
            for _ in range(1024):
                fh.write(block)
        zf.writestr("server.py", "print('hi')\n")
    return dest


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory, docker_engine):
    from grader.cli import main

    FORGED.unlink(missing_ok=True)
    base = tmp_path_factory.mktemp("hostile")
    batch = build(base / "class")
    out = base / "out"
    # This process's own containers only: another worker of the suite grades beside it.
    from grader.sandbox.docker import OWNER_LABEL

    mine = {"label": f"{OWNER_LABEL}={socket.gethostname()}:{os.getpid()}"}
    before = {c.id for c in docker_engine.containers.list(all=True, filters=mine)}
    start = time.monotonic()
    code = main(
        [
            str(batch),
            "--assignment",
            "epoll",
            "--out",
            str(out),
            "--sandbox",
            "docker",
            "--jobs",
            "2",
        ]
    )
    seconds = time.monotonic() - start
    after = {c.id for c in docker_engine.containers.list(all=True, filters=mine)}
    return code, out, seconds, after - before, batch


@pytest.mark.parametrize("ident", sorted(expected()))
def test_each_scored_as_it_deserves(hostile_batch, ident):
    code, out, *_ = hostile_batch
    assert code == 0
    checks = {c.id for c in load_assignment("epoll").checks}
    assert_verdicts(load_results(out, ident), expected()[ident], checks)


def test_batch_bounded_and_nothing_survives(hostile_batch):
    _, out, seconds, new_containers, _ = hostile_batch
    assert seconds < BATCH_BOUND
    assert new_containers == set(), "containers were left behind"
    for ident in expected():
        assert load_results(out, ident)["execution_time"] < 250, ident


def test_nothing_written_on_the_host_outside_out(hostile_batch):
    _, out, _, _, batch = hostile_batch
    assert not FORGED.exists()
    assert not Path("/tmp/socketgrade-zip-slip.py").exists()
    assert not list(batch.parent.glob("**/socketgrade-zip-slip.py"))
    # The class folder is read, never written: no result files, no fillers appeared in it.
    for name in ("results.json", "report.json", "filler-0.bin"):
        assert not list(batch.rglob(name)), name
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["grades.csv", "index.html"]
    assert not (out / ".work").exists()


def test_reports_escape_what_submissions_printed(hostile_batch):
    _, out, *_ = hostile_batch
    html = (out / "html_output" / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(" in html
    assert "<script>alert(" not in html and "<img src=x" not in html
    assert "{{ 7*7 }}" in html and "{% raw %}" in html.replace("&#37;", "%")
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "<script>alert(" not in index


def test_forged_output_does_not_count(hostile_batch):
    """Its forging code ran (the report shows the fake pytest line it printed), and its score
    is what the harness measured: the course listing's 90, not the 100 it wrote everywhere."""
    _, out, *_ = hostile_batch
    assert load_results(out, "forged_results")["score"] == 90
    html = (out / "forged_results" / "report.html").read_text(encoding="utf-8")
    assert "10 passed in 0.01s" in html
